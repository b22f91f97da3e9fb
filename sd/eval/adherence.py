"""Prompt adherence: does the image show what the prompt asked for?

Prompts are the canonical captions of scenes drawn, balanced, from the generator's combinations: either
the held-in colour-shape pairs (seen in training) or the held-out ones (never seen, so a score there
measures composition). Each generated image is read by the attribute classifier, and an attribute
counts as followed when the classifier's reading equals the prompt's. The classifier is >= 99% right
on every attribute of clean renders, so the scores measure the model, not the judge.
"""

from __future__ import annotations

import math
from typing import Protocol

from PIL import Image
from tqdm.auto import tqdm

from sd.data.captions import canonical_caption
from sd.data.dataset import sample_scenes
from sd.eval.classifier import ShapesClassifier, load_classifier, scene_attributes

# The order attributes are reported in: the ones a prompt is mostly about first.
REPORTED = ("colour", "shape", "position", "background", "size")
# What the embedded model should reach on held-in prompts (held-out ones have no target: they are a probe).
HELD_IN_TARGETS = {"colour": 0.95, "shape": 0.90, "position": 0.90, "background": 0.95}


class TextToImage(Protocol):
    """What scoring needs of a pipeline (StableDiffusionPipeline has it; tests pass fakes)."""

    def txt2img(self, prompt: str, negative_prompt: str = "", **settings) -> list[Image.Image]: ...


def evaluate_adherence(
    pipe: TextToImage,
    n_samples: int,
    seed: int,
    held_out: bool,
    steps: int = 25,
    sampler: str = "dpmpp_2m",
    guidance: float = 5.0,
    batch: int = 1,
    classifier: ShapesClassifier | None = None,
    negative_prompt: str = "",
    progress: bool = True,
) -> dict:
    """Generate `n_samples` images for held-in or held-out prompts and score each attribute.

    Image j uses seed `seed + j`. With `batch` > 1 each prompt gets `batch` images in one txt2img call
    (its batch is seeded seed, seed + 1, ...), so there are ceil(n_samples / batch) distinct prompts;
    batch 1 gives one image per prompt. Returns {"held_out", "n_samples", "accuracy": {attribute:
    fraction}, "all_correct": fraction with all five right, "samples": [(prompt, image, predicted)],
    "targets": [prompted attributes], "seeds": [seed of each image]}.
    """
    if n_samples < 1 or batch < 1:
        raise ValueError(f"n_samples ({n_samples}) and batch ({batch}) must be at least 1")
    classifier = classifier or load_classifier()
    scenes = sample_scenes(math.ceil(n_samples / batch), seed, held_out)
    samples: list[tuple[str, Image.Image, dict[str, str]]] = []
    targets: list[dict[str, str]] = []
    seeds: list[int] = []
    kind = "held-out" if held_out else "held-in"
    with tqdm(total=n_samples, desc=f"sampling {kind} prompts", disable=not progress) as bar:
        for k, scene in enumerate(scenes):
            count = min(batch, n_samples - k * batch)
            prompt = canonical_caption(scene)
            images = pipe.txt2img(
                prompt, negative_prompt, seed=seed + k * batch, steps=steps, sampler=sampler,
                guidance=guidance, batch=count, progress=False,
            )  # fmt: skip
            for i, (image, predicted) in enumerate(zip(images, classifier.predict(images), strict=True)):
                samples.append((prompt, image, predicted))
                targets.append(scene_attributes(scene))
                seeds.append(seed + k * batch + i)
            bar.update(count)
    right = [
        {a: predicted[a] == target[a] for a in REPORTED}
        for (_, _, predicted), target in zip(samples, targets, strict=True)
    ]
    return {
        "held_out": held_out,
        "n_samples": n_samples,
        "accuracy": {a: sum(r[a] for r in right) / n_samples for a in REPORTED},
        "all_correct": sum(all(r.values()) for r in right) / n_samples,
        "samples": samples,
        "targets": targets,
        "seeds": seeds,
    }


def targets_met(accuracy: dict[str, float]) -> dict[str, bool]:
    """Which held-in targets the accuracies reach."""
    return {a: accuracy[a] >= target for a, target in HELD_IN_TARGETS.items()}


def markdown_table(held_in: dict, held_out: dict) -> str:
    """Accuracy per attribute for held-in and held-out prompts, with the held-in targets marked."""
    met = targets_met(held_in["accuracy"])
    lines = [
        f"| attribute | held-in (n={held_in['n_samples']}) | held-out (n={held_out['n_samples']}) | held-in target | |",
        "|---|---|---|---|---|",
    ]
    for a in REPORTED:
        target = f">= {HELD_IN_TARGETS[a]:.0%}" if a in HELD_IN_TARGETS else "-"
        verdict = ("met" if met[a] else "not met") if a in met else ""
        lines.append(f"| {a} | {held_in['accuracy'][a]:.1%} | {held_out['accuracy'][a]:.1%} | {target} | {verdict} |")
    lines.append(f"| all five | {held_in['all_correct']:.1%} | {held_out['all_correct']:.1%} | - | |")
    return "\n".join(lines)
