"""LoRA adapters (Hu et al. 2021) for the hand-written UNet and text encoder.

    layer.py     one adapted layer: W + scale * alpha/r * B A
    names.py     our module names, and the names other files give them (diffusers, kohya)
    formats.py   diffusers/PEFT and kohya files -> one internal form, and back to diffusers/PEFT
    adapter.py   a file fitted onto a loaded model (clear errors when it does not fit)
    stack.py     apply at runtime scales, stack several, merge and unmerge exactly
    spec.py      the command line's FILE[:SCALE]
"""
