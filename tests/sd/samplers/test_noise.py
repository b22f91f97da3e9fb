"""randn_tensor draws what diffusers' randn_tensor draws, and one generator per image makes images independent."""

import torch
from diffusers.utils.torch_utils import randn_tensor as diffusers_randn_tensor

from sd.samplers.noise import randn_tensor

SHAPE = (3, 4, 8, 8)


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_single_generator_matches_diffusers():
    ours = randn_tensor(SHAPE, torch.Generator().manual_seed(7), torch.float32, "cpu")
    theirs = diffusers_randn_tensor(SHAPE, generator=torch.Generator().manual_seed(7), dtype=torch.float32)
    assert torch.equal(ours, theirs)


def test_generator_list_matches_diffusers():
    ours = randn_tensor(SHAPE, gens(1, 2, 3), torch.float32, "cpu")
    theirs = diffusers_randn_tensor(SHAPE, generator=gens(1, 2, 3), dtype=torch.float32)
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, randn_tensor(SHAPE, torch.Generator().manual_seed(1), torch.float32, "cpu"))


def test_one_element_list_is_the_generator_itself():
    ours = randn_tensor(SHAPE, gens(4), torch.float32, "cpu")
    theirs = diffusers_randn_tensor(SHAPE, generator=gens(4), dtype=torch.float32)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours, randn_tensor(SHAPE, torch.Generator().manual_seed(4), torch.float32, "cpu"))


def test_image_i_does_not_depend_on_the_batch_size():
    batch_of_three = randn_tensor(SHAPE, gens(10, 20, 30), torch.float32, "cpu")
    batch_of_two = randn_tensor((2, *SHAPE[1:]), gens(20, 30), torch.float32, "cpu")
    assert torch.equal(batch_of_three[1:], batch_of_two)


def test_dtype_and_device():
    noise = randn_tensor(SHAPE, gens(1, 2, 3), torch.float16, torch.device("cpu"))
    assert noise.dtype == torch.float16 and noise.device.type == "cpu"
    theirs = diffusers_randn_tensor(SHAPE, generator=gens(1, 2, 3), dtype=torch.float16)
    assert torch.equal(noise, theirs)


def test_unseeded_draw_has_the_shape():
    assert randn_tensor(SHAPE).shape == SHAPE
