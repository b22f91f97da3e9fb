"""The dtypes a checkpoint loads in, by the names the commands take (--dtype), each with its torch dtype's
attribute name: kept apart from checkpoint.py, which imports torch, so that --help lists them at once."""

DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
