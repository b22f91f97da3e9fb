"""A small random SD 1.x-structured model, in memory and as a file, shared by the GIF driver's tests."""

from pathlib import Path

import pytest

from sd.loading.original import save_original
from sd.pipeline import StableDiffusionPipeline
from tests.tiny_checkpoint import tiny_checkpoint

KEYFRAMES = "0: a red circle on a blue background\n3: a blue square on a yellow background\n6: a green star"


@pytest.fixture(scope="session")
def tiny_pipe() -> StableDiffusionPipeline:
    return StableDiffusionPipeline(tiny_checkpoint())


@pytest.fixture(scope="session")
def tiny_file(tmp_path_factory) -> Path:
    return save_original(tiny_checkpoint(), tmp_path_factory.mktemp("model") / "tiny.safetensors")
