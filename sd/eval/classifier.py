"""The judge of prompt adherence: a small CNN that names the shape, colours, size and position in an image.

It is trained on the shapes generator's ground truth (`python -m sd.eval.train_classifier`), so what it
reads off a generated image can be compared with what the prompt asked for. Two coordinate channels
(x, y in [-1, 1]) are appended to the RGB input ("CoordConv"): global pooling throws away where things
are, and the coordinates let the convolutions encode position in their features before it does.
Global average and max pooling both feed the heads: the average sees the background, the max a small shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from sd.data.shapes import SIZE, Scene
from sd.data.vocabulary import COLOURS, POSITIONS, SHAPES, SIZES
from sd.errors import UserError
from sd.paths import CLASSIFIER_PATH

# Each head's class names, in logit order; "background" is the colour of the background.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "background": tuple(COLOURS),
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
}


@dataclass(frozen=True)
class ClassifierConfig:
    """Channels of each conv block and its stride; the first block sees RGB + 2 coordinate channels."""

    widths: tuple[int, ...] = (24, 48, 48, 96, 128)
    strides: tuple[int, ...] = (2, 2, 1, 2, 1)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ShapesClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ClassifierConfig()
        channels = [5, *config.widths]
        self.features = nn.Sequential(
            *(_block(cin, cout, s) for cin, cout, s in zip(channels[:-1], channels[1:], config.strides, strict=True))
        )
        self.heads = nn.ModuleDict({name: nn.Linear(2 * channels[-1], len(v)) for name, v in ATTRIBUTES.items()})
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)  # (1, 2, 64, 64)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images (B, 3, 64, 64) in [-1, 1] -> logits {attribute: (B, classes)}."""
        x = torch.cat([images, self.coords.expand(images.shape[0], -1, -1, -1)], dim=1)  # (B, 5, 64, 64)
        x = self.features(x)  # (B, C, 8, 8) with the default strides
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)  # (B, 2C)
        return {name: head(pooled) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: np.ndarray | Sequence[Image.Image], batch_size: int = 256) -> list[dict[str, str]]:
        """Attribute names for each image (uint8 (N, 64, 64, 3) array or PIL images of any size)."""
        self.eval()
        array = to_array(images)
        indices = {name: [] for name in ATTRIBUTES}
        device = self.coords.device
        for start in range(0, len(array), batch_size):
            logits = self(images_to_tensor(array[start : start + batch_size]).to(device))
            for name, value in logits.items():
                indices[name].append(value.argmax(dim=1).cpu())
        columns = {name: torch.cat(parts).tolist() if parts else [] for name, parts in indices.items()}
        return [{name: ATTRIBUTES[name][columns[name][i]] for name in ATTRIBUTES} for i in range(len(array))]


def to_array(images: np.ndarray | Sequence[Image.Image]) -> np.ndarray:
    """uint8 (N, 64, 64, 3); PIL images of another size are resized (box filter) to the classifier's 64x64."""
    if isinstance(images, np.ndarray):
        return images
    array = np.empty((len(images), SIZE, SIZE, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        image = image.convert("RGB")
        array[i] = np.asarray(image if image.size == (SIZE, SIZE) else image.resize((SIZE, SIZE), Image.BOX))
    return array


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> float (N, 3, 64, 64) in [-1, 1], the pipeline's image convention."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def scene_attributes(scene: Scene) -> dict[str, str]:
    """The ground truth a prompt for `scene` asks for, keyed like the classifier's heads."""
    return {name: getattr(scene, name) for name in ATTRIBUTES}


def scene_labels(scenes: Sequence[Scene]) -> dict[str, torch.Tensor]:
    """Class indices {attribute: (N,) long} for training and scoring."""
    return {
        name: torch.tensor([names.index(getattr(s, name)) for s in scenes], dtype=torch.long)
        for name, names in ATTRIBUTES.items()
    }


def save_classifier(model: ShapesClassifier, path: str | Path, extra: dict[str, str] | None = None) -> None:
    """Weights as safetensors, the config (and any `extra` notes) in its metadata."""
    metadata = {"config": json.dumps(asdict(model.config)), "attributes": json.dumps(ATTRIBUTES), **(extra or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


def load_classifier(path: str | Path = CLASSIFIER_PATH, device: str | torch.device = "cpu") -> ShapesClassifier:
    """The trained judge, in eval mode; a one-line UserError if the file is missing or not a classifier."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no classifier; train one with `python -m sd.eval.train_classifier`")
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        config = json.loads(metadata["config"])
        if json.loads(metadata.get("attributes", "null")) != {k: list(v) for k, v in ATTRIBUTES.items()}:
            raise UserError(f"{path}: classifier was trained on another vocabulary; retrain it")
        model = ShapesClassifier(ClassifierConfig(**{k: tuple(v) for k, v in config.items()}))
        model.load_state_dict(load_file(str(path)))
    except UserError:
        raise
    except Exception as error:  # a corrupt or foreign file: say so in one line
        raise UserError(f"{path}: not a shapes classifier ({type(error).__name__}: {error})") from error
    return model.to(device).eval()
