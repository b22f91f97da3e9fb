"""The encoder-decoder Transformer (Vaswani et al. 2017) translating English dates into ISO 8601.

`python -m transformer.translation.train`; the attention itself is `transformer.attention.multi_head_attention`,
the same function CLIP's text encoder and the UNet's cross-attention call.
"""
