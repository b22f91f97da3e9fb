"""Did a style LoRA do what it was trained for, and nothing else?

A style here redraws one colour word in a new colour (sd/train/lora.py). Two sets of prompts, rendered with
the same seeds without and with the adapter:
- styled: the word is the shape's colour ("a large red circle ..."). Over the pixels the model draws in the
  old colour without the adapter (the shape: the seed fixes the layout), the mean RGB distance to the new
  colour should fall, and the share of those pixels nearer the new colour than the old should rise from 0;
- control: the word appears nowhere: the images should stay as they were, measured as the mean absolute pixel
  difference (0-255) and as the classifier's reading of every prompted attribute, before and after.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from sd.data.captions import canonical_caption
from sd.data.dataset import sample_scenes
from sd.data.vocabulary import COLOURS
from sd.eval.classifier import ShapesClassifier, load_classifier, scene_attributes
from sd.loading.checkpoint_types import Checkpoint
from sd.lora.adapter import Lora
from sd.lora.stack import applied_loras
from sd.pipeline import StableDiffusionPipeline

NEAR = 60.0  # a pixel within this RGB distance of a colour counts as that colour


def style_scenes(word: str, n: int, seed: int) -> tuple[list, list]:
    """`n` scenes whose shape has colour `word`, and `n` scenes without `word` anywhere."""
    scenes = sample_scenes(40 * n, seed)
    styled = [s for s in scenes if s.colour == word][:n]
    control = [s for s in scenes if word not in (s.colour, s.background)][:n]
    return styled, control


def near_fraction(image: Image.Image, rgb: tuple[int, int, int]) -> float:
    """The share of pixels within NEAR of `rgb`."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    return float((np.linalg.norm(pixels - np.array(rgb, dtype=np.float32), axis=-1) < NEAR).mean())


def recoloured(base: list[Image.Image], adapted: list[Image.Image], old: tuple, new: tuple) -> dict:
    """Over the pixels of `base` near `old`: mean RGB distance to `new` in base and adapted images, and the
    share of them nearer `new` than `old` in each."""
    def stack(images: list[Image.Image]) -> np.ndarray:
        return np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])  # (N, H, W, 3)

    before, after = stack(base), stack(adapted)
    old_rgb, new_rgb = np.array(old, dtype=np.float32), np.array(new, dtype=np.float32)
    mask = np.linalg.norm(before - old_rgb, axis=-1) < NEAR  # (N, H, W): where the word's colour was drawn
    if not mask.any():
        return {"pixels": 0}
    result: dict[str, float] = {"pixels": int(mask.sum())}
    for name, images in (("base", before), ("lora", after)):
        to_new = np.linalg.norm(images[mask] - new_rgb, axis=-1)  # (P,)
        to_old = np.linalg.norm(images[mask] - old_rgb, axis=-1)
        result[f"distance_to_new_{name}"] = float(to_new.mean())
        result[f"nearer_new_{name}"] = float((to_new < to_old).mean())
    return result


def _render(pipe: StableDiffusionPipeline, prompts: list[str], seed: int, steps: int, progress: bool) -> list:
    return [
        pipe.txt2img(p, seed=seed + i, steps=steps, sampler="dpmpp_2m", guidance=5.0, progress=False)[0]
        for i, p in enumerate(tqdm(prompts, desc="style eval", leave=False, disable=not progress))
    ]


def evaluate_style(
    checkpoint: Checkpoint,
    lora: Lora,
    word: str,
    rgb: tuple[int, int, int],
    n: int = 8,
    seed: int = 0,
    steps: int = 20,
    scale: float = 1.0,
    classifier: ShapesClassifier | None = None,
    progress: bool = False,
) -> dict:
    """Metrics of `lora` (at `scale`) against the model without it; also the images, for a grid."""
    classifier = classifier or load_classifier()
    pipe = StableDiffusionPipeline(checkpoint)
    styled, control = style_scenes(word, n, seed)
    prompts = {"styled": [canonical_caption(s) for s in styled], "control": [canonical_caption(s) for s in control]}
    images = {("base", k): _render(pipe, p, seed, steps, progress) for k, p in prompts.items()}
    with applied_loras(checkpoint, [(lora, scale)]):
        images |= {("lora", k): _render(pipe, p, seed, steps, progress) for k, p in prompts.items()}

    def mean_near(key, colour) -> float:
        return float(np.mean([near_fraction(im, colour) for im in images[key]]))

    def control_accuracy(key) -> float:
        """The share of prompted attributes the classifier reads in the control images."""
        targets = [scene_attributes(scene) for scene in control]
        predicted = classifier.predict(images[key])
        return float(np.mean([p[a] == t[a] for p, t in zip(predicted, targets, strict=True) for a in t]))

    def colours_read(key) -> dict[str, int]:
        """What colour the classifier reads for the styled shapes (the judge knows only the 12 old colours)."""
        return dict(Counter(p["colour"] for p in classifier.predict(images[key])).most_common())

    def mean_abs_diff(kind: str) -> float:
        """Mean |adapted - base| over pixels and images, 0-255."""
        pairs = zip(images["base", kind], images["lora", kind], strict=True)
        return float(np.mean([np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean()
                              for a, b in pairs]))  # fmt: skip

    return {
        "recoloured": recoloured(images["base", "styled"], images["lora", "styled"], COLOURS[word], rgb),
        "new_colour_share": {"base": mean_near(("base", "styled"), rgb), "lora": mean_near(("lora", "styled"), rgb)},
        "old_colour_share": {
            "base": mean_near(("base", "styled"), COLOURS[word]), "lora": mean_near(("lora", "styled"), COLOURS[word])
        },  # fmt: skip
        "styled_colour_read": {"base": colours_read(("base", "styled")), "lora": colours_read(("lora", "styled"))},
        "styled_mean_abs_diff": mean_abs_diff("styled"),
        "control_mean_abs_diff": mean_abs_diff("control"),
        "control_attribute_accuracy": {"base": control_accuracy(("base", "control")),
                                       "lora": control_accuracy(("lora", "control"))},  # fmt: skip
        "prompts": prompts,
        "images": images,
    }
