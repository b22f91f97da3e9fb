"""Every setting of an animation in one dataclass: what the CLI fills, the sidecar JSON stores, and
`--from-json` reads back, so a run is reproduced from its sidecar alone.

Seeds: keyframe k's noise comes from its own `seed=` if the keyframe line gives one, else from
`seed + frame` (the run's --seed plus the keyframe's frame number), so inserting a keyframe does not
change the seeds of the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from sd.errors import UserError
from sd.gif.easing import EASINGS
from sd.gif.keyframes import Keyframe
from sd.samplers import SAMPLERS
from sd.samplers.spacing import SPACINGS
from transformer.interpolated_attention import VARIANTS

TEXT_INTERPOLATIONS = ("lerp", "slerp", "off")
# Ancestral samplers draw fresh noise every step, so neighbouring frames would not share a trajectory. LCM
# (the distilled models') re-noises between its few steps too, but with the same noise for every frame
# (sd/gif/renderer.py), so frames move only with their start noise and text.
GIF_SAMPLERS = ("ddim", "euler", "dpmpp_2m", "lcm")
# In-betweens start from the keyframes' latents this far into the steps. Measured with the shipped model
# (docs/gif.md, "How the driver works"): 0.8 had the lowest jump ratios of 0.5-0.8, at 0.3x the UNet steps.
DEFAULT_BRANCH = 0.8
# How blend weights are chosen (spacing.py): from the easing alone, or so that consecutive frames are equally far apart.
FRAME_SPACINGS = ("planned", "even")
# What a sidecar written before a setting existed ran with, where that differs from the default, so --from-json of
# an old sidecar reproduces its file: leading timestep spacing whatever the checkpoint says (before --spacing), and
# planned frames (before --frame-spacing; `python -m sd bench morph` chose "even" as the default, docs/transitions.md).
BEFORE_THE_SETTING = {"spacing": "leading", "frame_spacing": "planned"}
# Attention interpolation (attention_interpolation.py): off, or AID's outer or inner form.
ATTENTION_INTERPOLATIONS = ("off", *VARIANTS)
AID_FRACTION = 0.5  # of the steps an in-between runs, from its first: AID's warm-up ratio (DiffMorpher uses 0.6)


@dataclass
class GifSettings:
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    sampler: str = "dpmpp_2m"
    spacing: str | None = None  # None: the checkpoint's timestep spacing (sd/samplers/spacing.py)
    guidance: float = 5.0
    width: int | None = None  # None: the model's native size
    height: int | None = None
    easing: str = "linear"  # with even frame spacing: equal steps (bench morph's best; "smooth" eases in and out)
    text_interp: str = "lerp"
    fixed_latent: bool = False
    loop: bool = False
    pingpong: bool = False
    loop_frames: int | None = None
    init_image: str | None = None
    init_image_sha256: str | None = None
    strength: float = 0.6
    feedback: bool = False
    share: bool = True  # trajectory sharing (latent-blending style branching)
    branch: float = DEFAULT_BRANCH
    max_jump: float | None = None
    max_frames: int = 1000  # cap on frames after --max-jump insertions
    batch: int | None = None  # frames per UNet call; None: frames_per_call's default
    fps: float = 12.0
    dither: bool = False
    palette: str = "shared"  # "shared" or "per-frame"
    pixelate: int | None = None  # pixel-grid width
    colors: int = 16  # palette size for --pixelate
    scale: int = 1  # nearest-neighbour upscale of the written frames
    # LoRAs merged into the model for this run: {"path", "scale", "sha256"} each (sha256 filled in by animate)
    loras: list[dict] = field(default_factory=list)
    audio: str | None = None  # its loudness paces each transition (pacing.py); an .mp4 output carries it
    audio_sha256: str | None = None
    audio_smoothing: float = 0.25  # seconds: width (sigma) of the Gaussian that smooths the loudness
    video: str | None = None  # frame n is img2img from the video's frame at the same time
    video_sha256: str | None = None
    video_strength: float = 0.6
    adain: bool = False  # in-betweens start from latents with the lerp of their keyframes' channel statistics
    # "even": weights chosen so consecutive frames are equally far apart (spacing.py), for in-betweens of keyframes;
    # --feedback and --video frames follow the plan
    frame_spacing: str = "even"
    probes: int = 12  # --frame-spacing even: in-betweens rendered per transition to explore the weights
    # --frame-spacing even: a probe this close to a frame's place (a share of a step) is shown instead of rendering the
    # frame. Off by default: at 0.2 the default model's transitions cost 11% fewer UNet steps for a median jump ratio
    # of 1.22 instead of 1.10 (docs/transitions.md, snapping), and transitions come first. A distilled student
    # carries its own, with --rounds (with_model_defaults; STUDENT_GIF in sd/loading/student.py).
    snap: float = 0.0
    rounds: int = 2  # --frame-spacing even: the in-betweens are rendered in this many rounds, each respaced anew
    attention: str = "off"  # "outer"/"inner": in-betweens attend to their keyframes' K/V (AID)
    attention_fraction: float = AID_FRACTION
    attention_budget_mb: float | None = None  # cap on the keyframes' captured K/V, in MiB; None: every layer

    def keyframe_seed(self, keyframe: Keyframe) -> int:
        return keyframe.seed if keyframe.seed is not None else self.seed + keyframe.frame

    def frames_per_call(self, guided: bool) -> int:
        """--batch, or by default as many frames as fill 2 UNet rows: 1 guided (its two branches), 2 unguided.
        A UNet batch of one runs as two rows anyway (renderer.py), so an unguided frame alone would pay for a
        second row it throws away; the pixels are the same at any batch."""
        return self.batch or (1 if guided else 2)

    def validate(self) -> None:
        """Everything that needs no model, so a typo fails at once rather than after loading."""
        checks = [
            (self.sampler in GIF_SAMPLERS, f"--sampler {self.sampler}: GIFs need a deterministic sampler "
             f"({', '.join(GIF_SAMPLERS)}); {', '.join(s for s in SAMPLERS if s not in GIF_SAMPLERS)} add new "
             "noise every step and make frames flicker"),
            (self.steps >= 1, f"--steps {self.steps} must be at least 1"),
            (self.spacing in (None, *SPACINGS), f"--spacing {self.spacing}: choose one of {', '.join(SPACINGS)}"),
            (self.easing in EASINGS, f"--easing {self.easing}: choose one of {', '.join(EASINGS)}"),
            (self.text_interp in TEXT_INTERPOLATIONS,
             f"--text-interp {self.text_interp}: choose one of {', '.join(TEXT_INTERPOLATIONS)}"),
            (0.0 < self.strength <= 1.0, f"--strength {self.strength} must be in (0, 1]"),
            (not (self.feedback and self.strength >= 1.0), "--feedback needs --strength below 1, or frames ignore "
             "the previous one"),
            (0.0 < self.branch < 1.0, f"--branch {self.branch} must be between 0 and 1"),
            (self.max_jump is None or self.max_jump > 0, f"--max-jump {self.max_jump} must be positive"),
            (not (self.feedback and self.max_jump), "--max-jump cannot be combined with --feedback (an inserted "
             "frame would change every frame after it)"),
            (not (self.feedback and (self.batch or 1) > 1), "--batch cannot apply with --feedback: each frame starts "
             "from the one before"),
            (self.batch is None or self.batch >= 1, f"--batch {self.batch} must be at least 1"),
            (self.fps > 0, f"--fps {self.fps} must be positive"),
            (self.palette in ("shared", "per-frame"), f"--palette {self.palette}: choose shared or per-frame"),
            (self.pixelate is None or self.pixelate >= 2, f"--pixelate {self.pixelate} must be at least 2 pixels"),
            (2 <= self.colors <= 256, f"--colors {self.colors} must be between 2 and 256"),
            (1 <= self.scale <= 16, f"--scale {self.scale} must be between 1 and 16"),
            (self.loop_frames is None or self.loop_frames >= 1, f"--loop-frames {self.loop_frames} must be >= 1"),
            (not (self.loop and self.pingpong), "choose --loop or --pingpong, not both"),
            (self.audio_smoothing >= 0, f"--audio-smoothing {self.audio_smoothing} must be >= 0 seconds"),
            (0.0 < self.video_strength <= 1.0, f"--video-strength {self.video_strength} must be in (0, 1]"),
            (not (self.video and (self.init_image or self.feedback)), "--video already gives every frame its "
             "init image: drop --init-image / --feedback"),
            (not (self.video and self.max_jump), "--max-jump cannot be combined with --video (an inserted frame "
             "has no video frame of its own)"),
            (self.frame_spacing in FRAME_SPACINGS,
             f"--frame-spacing {self.frame_spacing}: choose one of {', '.join(FRAME_SPACINGS)}"),
            (self.probes >= 1, f"--probes {self.probes} must be at least 1"),
            (0.0 <= self.snap <= 0.5, f"--snap {self.snap} must be between 0 and 0.5 (a share of a frame's step)"),
            (1 <= self.rounds <= 8, f"--rounds {self.rounds} must be between 1 and 8"),
            (not (self.adain and (self.feedback or self.video)),
             "--adain works on in-betweens of keyframes; with --feedback or --video every frame starts from another "
             "image: drop one of them"),
            (self.attention in ATTENTION_INTERPOLATIONS,
             f"--attention {self.attention}: choose one of {', '.join(ATTENTION_INTERPOLATIONS)}"),
            (0.0 <= self.attention_fraction <= 1.0,
             f"--attention-fraction {self.attention_fraction} must be in [0, 1]"),
            (self.attention_budget_mb is None or self.attention_budget_mb > 0,
             f"--attention-budget-mb {self.attention_budget_mb} must be positive"),
            (not (self.attention != "off" and (self.feedback or self.video)),
             "--attention interpolates between keyframes; with --feedback or --video every frame starts from "
             "another image: drop one of them"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and (value <= 0 or value % 8):
                raise UserError(f"--{name} {value} is not a positive multiple of 8 (the VAE downsamples by 8)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "settings") -> GifSettings:
        """Settings as a sidecar recorded them; what it does not name, as it ran then (BEFORE_THE_SETTING)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown setting {unknown[0]!r}")
        return cls(**(BEFORE_THE_SETTING | data))


def with_model_defaults(settings: GifSettings, defaults, given: set[str] = frozenset()) -> GifSettings:
    """`settings` with a model's own sampler, steps and guidance (`defaults`, a SamplingDefaults or None: a
    distilled student's few LCM steps) and, where it carries them, its even spacing's --snap and --rounds, except
    those the user gave (`given`). A diffusers folder's ancestral
    scheduler is left out: GIFs keep their deterministic sampler. `python -m sd gif` and `bench distilled` agree."""
    if defaults is None:
        return settings
    own = {k: v for k, v in asdict(defaults).items() if v is not None and k not in given}
    if own.get("sampler") not in (None, *GIF_SAMPLERS):
        del own["sampler"]
    return replace(settings, **own)
