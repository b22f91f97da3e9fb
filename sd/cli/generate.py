"""`python -m sd txt2img ...` and `python -m sd img2img ...`: images as PNGs with their settings inside."""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL.PngImagePlugin import PngInfo

from sd.atomic_output import atomic_output
from sd.bf16_modes import MODES
from sd.cli.model_option import (
    PREDICTION_HELP,
    SPACING_HELP,
    add_model_option,
    apply_model_option,
    fill_sampling_defaults,
)
from sd.errors import UserError
from sd.loading.checkpoint_types import SamplingDefaults
from sd.loading.dtype_names import DTYPE_NAMES
from sd.paths import DEFAULT_CHECKPOINT
from sd.samplers import SAMPLERS
from sd.samplers.base import PREDICTION_TYPES
from sd.samplers.spacing import SPACINGS
from vae.config import SD15_VAE

TXT2IMG_DEFAULTS = SamplingDefaults("ddim", 50, 7.5)  # for models that carry none of their own


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, summary in (
        ("txt2img", "generate images from a prompt"),
        ("img2img", "generate images from a prompt and an init image"),
    ):
        parser = subparsers.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Image i of a batch uses seed SEED+i, so it is the "
            "same image whatever --batch is, and the same one diffusers' pipeline makes with those seeds.",
        )
        parser.add_argument("prompt", help="what to draw")
        default = DEFAULT_CHECKPOINT.name
        parser.add_argument("--checkpoint", help=f"an SD 1.x/2.x file or diffusers folder (default: weights/{default})")
        parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, help=PREDICTION_HELP)
        add_model_option(parser)
        parser.add_argument("--out", default="outputs/image.png", help="PNG path; a batch writes NAME_0000.png, ...")
        parser.add_argument("--negative", default="", help="negative prompt (what guidance steers away from)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the first image (default 0)")
        own, d = " unless the model has its own (a distilled one)", TXT2IMG_DEFAULTS
        parser.add_argument("--steps", type=int, help=f"denoising steps (default {d.steps}{own})")
        parser.add_argument("--sampler", choices=list(SAMPLERS), help=f"sampler (default {d.sampler}{own})")
        parser.add_argument("--spacing", choices=SPACINGS, help=SPACING_HELP)
        parser.add_argument("--eta", type=float, default=0.0, help="DDIM's eta (0 deterministic, 1 DDPM-like) "
                            "and TCD's gamma (0 deterministic, 0.3 its authors'); default 0")
        parser.add_argument("--guidance", type=float,
                            help=f"classifier-free guidance scale (default {d.guidance:g}{own})")
        parser.add_argument("--width", type=int, help="multiple of 8 (default: the model's native size)")
        parser.add_argument("--height", type=int, help="multiple of 8 (default: the model's native size)")
        parser.add_argument("--batch", type=int, default=1, help="images to generate (default 1)")
        parser.add_argument("--dtype", choices=list(DTYPE_NAMES), default="fp32", help="fp32, bf16, or fp16 on a GPU")
        parser.add_argument("--bf16-compute", choices=MODES, default="auto",
                            help="bf16 weights computing natively or in fp32 (default auto: fp32 on a CPU "
                            "without bf16 matrix instructions, where native bf16 is several times slower)")
        parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
        parser.add_argument("--offload", action="store_true", help="keep weights on the CPU between uses (low VRAM)")
        parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
        parser.add_argument("--lora", action="append", default=[], metavar="FILE[:SCALE]",
                            help="apply a LoRA (diffusers or kohya file) at SCALE (default 1); repeat to stack")
        if name == "img2img":
            parser.add_argument("--init-image", required=True, help="the image to start from")
            parser.add_argument("--strength", type=float, default=0.8, help="0 keeps the image, 1 ignores it")
        parser.set_defaults(func=run, mode=name)


def output_paths(out: Path, batch: int) -> list[Path]:
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: output must be a .png file")
    if batch == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i:04d}.png") for i in range(batch)]


def validate(args: argparse.Namespace) -> list[Path]:
    """Every check that needs no model, so a typo fails in a second rather than after loading."""
    from sd.lora.spec import parse_lora_spec  # torch: imported once the arguments have parsed
    from sd.pipeline import check_size

    apply_model_option(args)
    fill_sampling_defaults(args, TXT2IMG_DEFAULTS)
    if args.steps < 1 or args.batch < 1:
        raise UserError(f"--steps ({args.steps}) and --batch ({args.batch}) must be at least 1")
    if args.width or args.height:  # with SD's factor 8; the pipeline checks again with the loaded VAE's
        factor = SD15_VAE.downsample_factor
        check_size(args.width or factor, args.height or factor, factor)
    args.lora_specs = [parse_lora_spec(text) for text in args.lora]
    if args.mode == "img2img" and not 0.0 <= args.strength <= 1.0:
        raise UserError(f"--strength {args.strength} is outside [0, 1]")
    paths = output_paths(Path(args.out), args.batch)
    existing = [str(p) for p in paths if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]}: already exists; choose another --out or pass --overwrite")
    return paths


def run(args: argparse.Namespace) -> int:
    from sd.images import load_image  # torch and the model: only once the arguments have parsed
    from sd.loading.checkpoint import load_checkpoint
    from sd.lora.spec import describe, load_specs
    from sd.lora.stack import applied_loras
    from sd.pipeline import StableDiffusionPipeline

    paths = validate(args)
    init = load_image(args.init_image) if args.mode == "img2img" else None
    checkpoint = load_checkpoint(args.checkpoint, args.dtype, args.prediction_type)
    pipe = StableDiffusionPipeline(checkpoint, device=args.device, offload=args.offload, bf16_compute=args.bf16_compute)
    common = dict(
        negative_prompt=args.negative, seed=args.seed, steps=args.steps, sampler=args.sampler,
        guidance=args.guidance, width=args.width, height=args.height, batch=args.batch, eta=args.eta,
        spacing=args.spacing,
    )  # fmt: skip
    spacing = pipe.timestep_config(args.sampler, args.spacing).spacing  # what ran, recorded in the PNG
    with applied_loras(checkpoint, load_specs(args.lora_specs, checkpoint)):  # merged into the weights
        if init is None:
            images = pipe.txt2img(args.prompt, **common)
        else:
            images = pipe.img2img(args.prompt, init, strength=args.strength, **common)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for i, (image, path) in enumerate(zip(images, paths, strict=True)):
        info = PngInfo()
        settings = {
            "prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed + i, "sampler": args.sampler,
            "steps": args.steps, "guidance": args.guidance, "eta": args.eta, "size": f"{image.width}x{image.height}",
            "checkpoint": checkpoint.name, "dtype": args.dtype, "prediction_type": checkpoint.prediction_type,
        }  # fmt: skip
        if spacing is not None:  # None: the sampler follows no spacing rule (LCM)
            settings["spacing"] = spacing
        if pipe.bf16_compute is not None:
            settings["bf16_compute"] = pipe.bf16_compute  # what ran: "native" or "fp32"
        if args.lora_specs:
            settings["lora"] = describe(args.lora_specs)
        if init is not None:
            settings |= {"init_image": Path(args.init_image).name, "strength": args.strength}
        for key, value in settings.items():
            info.add_text(key, str(value))
        with atomic_output(path, overwrite=args.overwrite) as tmp:
            image.save(tmp, format="PNG", pnginfo=info)
        print(f"wrote {path} (seed {args.seed + i})")
    return 0
