"""The web UI: keyframes and settings in, a live preview while frames are made, the GIF/MP4 and its
sidecar JSON out. Everything goes through the GIF driver (sd/gif/animate.py); this file only lays out the
page and turns its values into GifSettings.

Privacy and offline use: analytics are off, no share link is made, the theme uses the system's fonts
(Gradio's default theme fetches Google Fonts), and the server binds to 127.0.0.1 unless told otherwise.
"""


import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads this at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import functools  # noqa: E402
from pathlib import Path  # noqa: E402

from sd.errors import UserError  # noqa: E402
from sd.gif.easing import EASINGS  # noqa: E402
from sd.gif.keyframes import parse_keyframes  # noqa: E402
from sd.gif.settings import ATTENTION_INTERPOLATIONS, FRAME_SPACINGS, GIF_SAMPLERS, GifSettings  # noqa: E402
from sd.gif.timeline import plan_frames  # noqa: E402
from sd.samplers.spacing import SPACINGS  # noqa: E402
from sd.ui import models  # noqa: E402
from sd.ui.job import Job  # noqa: E402
from sd.ui.limits import MAX_UPLOAD, check_upload  # noqa: E402
from sd.ui.naming import output_path  # noqa: E402

DEFAULTS = GifSettings()
MODEL_SPACING = "the model's"  # the spacing dropdown's "no override" choice
EXAMPLE = (
    "0: a large red circle in the center on a blue background\n"
    "12: a large yellow star in the center on a black background\n"
    "24: a large white heart in the center on a pink background\n"
)
_jobs: dict[str, Job] = {}  # session -> its running job, so Stop reaches it


def require_gradio():
    try:
        import gradio
    except ImportError:
        raise UserError("the web UI needs gradio: pip install -e '.[ui]'") from None
    return gradio


def check_keyframes(text: str, loop: bool = False) -> str:
    """The parser's verdict on the prompt box, as the page shows it under the box."""
    try:
        keyframes = parse_keyframes(text or "", source="keyframes")
    except UserError as error:
        return f"**error:** {error}"
    frames = len(plan_frames(keyframes, EASINGS["linear"], loop=loop))
    return f"{len(keyframes)} keyframes, {frames} frames"


def settings_from(values: dict) -> GifSettings:
    """The page's values as GifSettings (validated by the driver, like the CLI's)."""
    size = int(values["size"]) if values["size"] else None
    settings = GifSettings(
        negative_prompt=values["negative"] or "", seed=int(values["seed"]), steps=int(values["steps"]),
        sampler=values["sampler"], guidance=float(values["guidance"]), width=size, height=size,
        spacing=None if values["spacing"] in (None, MODEL_SPACING) else values["spacing"],
        easing=values["easing"], loop=bool(values["loop"]), fps=float(values["fps"]),
        init_image=check_upload(values["init_image"], "image"), strength=float(values["strength"]),
        pixelate=int(values["pixelate"]) or None, scale=int(values["scale"]),
        audio=check_upload(values["audio"], "audio"), audio_smoothing=float(values["audio_smoothing"]),
        video=check_upload(values["video"], "video"), video_strength=float(values["video_strength"]),
        frame_spacing=values["frame_spacing"], adain=bool(values["adain"]), attention=values["attention"],
        attention_fraction=float(values["attention_fraction"]),
    )  # fmt: skip
    settings.validate()
    return settings


def build_app(out_dir: str | Path = "outputs/ui"):
    gr = require_gradio()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = out_dir / "cache"

    def generate(request: gr.Request, *args):
        values = dict(zip(INPUT_NAMES, args, strict=True))
        try:
            keyframes = parse_keyframes(values["keyframes"] or "", source="keyframes")
            settings = settings_from(values)
            checkpoint = models.checkpoint_for(values["model"], values["checkpoint"])
            settings = models.with_own_spacing(settings, checkpoint)  # a distilled student's own --snap, --rounds
        except UserError as error:
            raise gr.Error(str(error)) from None
        out = output_path(out_dir, settings.seed, "." + values["format"])
        yield {status: "loading the model...", files: None, gallery: None, frames_state: []}
        try:
            pipe = models.load_pipeline(checkpoint)
        except UserError as error:
            raise gr.Error(str(error)) from None
        run = functools.partial(
            _animate, keyframes, out, settings, pipe=pipe, cache_dir=cache_dir, progress=False
        )  # fmt: skip
        job = Job(run).start()
        session = request.session_hash
        _jobs[session] = job
        try:
            for event in job.events():
                if event.kind == "frame":
                    yield {preview: event.image, status: f"frame {event.done} of {event.total}"}
                elif event.kind == "stopped":
                    yield {status: "stopped: nothing was written"}
                elif event.kind == "error":
                    yield {status: f"**error:** {event.message}"}
                else:
                    result = event.result
                    yield {
                        status: f"wrote {out.name}: {len(result.frames)} frames, {result.unet_steps} UNet steps",
                        preview: str(out) if out.suffix == ".gif" else result.frames[-1],  # animated
                        files: [str(p) for p in result.outputs],
                        gallery: list(result.frames),
                        frames_state: list(result.frames),
                    }  # fmt: skip
        finally:  # the page went away or the event was cancelled: stop the run at its next frame
            job.stop()
            _jobs.pop(session, None)

    def stop(request: gr.Request):
        """The run ends at its next frame; the generate event then says 'stopped' (it is not cancelled, so
        that message always arrives)."""
        job = _jobs.get(request.session_hash)
        if job is not None:
            job.stop()

    def audio_template(audio_file, fps, component):
        from sd.audio.load import load_audio
        from sd.audio.onsets import keyframe_template

        try:
            path = check_upload(audio_file, "audio")
            if path is None:
                raise UserError("upload an audio file first")
            return keyframe_template(load_audio(path), float(fps), component, source="audio")
        except UserError as error:
            raise gr.Error(str(error)) from None

    def video_defaults(video_file, text):
        """The clip's fps and frame count become the defaults: fps field, and keyframes 0 and N - 1."""
        from sd.video.reader import read_video

        if video_file is None:
            return gr.update(), gr.update(), "no video"
        try:
            clip = read_video(check_upload(video_file, "video"))
        except UserError as error:
            raise gr.Error(str(error)) from None
        first = text.splitlines()[0].split(":", 1)[-1].strip() if text and text.strip() else "a prompt"
        template = f"0: {first}\n{len(clip.frames) - 1}: {first}\n"
        return clip.fps, template, f"video: {len(clip.frames)} frames at {clip.fps:g} fps"

    def inspire_me(topics, model, seed):
        from sd.inspire import inspire

        return inspire(3, 12, int(seed), topics or "", models.vocabulary_for(model))

    def send_frame(frames, index):
        if not frames:
            raise gr.Error("no frames yet: generate first")
        return frames[min(int(index or 0), len(frames) - 1)]

    def selected(evt: gr.SelectData):
        return evt.index

    with gr.Blocks(title="sd-from-scratch: keyframed animation") as app:
        gr.Markdown("## Keyframed prompts to GIF / MP4\nOne keyframe a line: `FRAME: PROMPT` "
                    "or `FRAME seed=SEED: PROMPT`, the first at frame 0.")  # fmt: skip
        with gr.Row():
            with gr.Column(scale=3):
                keyframes_box = gr.Textbox(EXAMPLE, label="keyframes", lines=6, elem_id="keyframes")
                verdict = gr.Markdown(check_keyframes(EXAMPLE), elem_id="keyframes-check")
                negative = gr.Textbox("", label="negative prompt", elem_id="negative")
                with gr.Row():
                    topics = gr.Textbox("", label="topics for 'inspire me' (optional)", elem_id="topics")
                    inspire_button = gr.Button("inspire me", elem_id="inspire")
                with gr.Row():
                    model = gr.Radio(models.model_choices(), value=models.EMBEDDED, label="model", elem_id="model")
                    checkpoint = gr.Textbox("", label="checkpoint path (for 'checkpoint path')", elem_id="checkpoint")
                with gr.Row():
                    sampler = gr.Dropdown(list(GIF_SAMPLERS), value=DEFAULTS.sampler, label="sampler")
                    spacing = gr.Dropdown([MODEL_SPACING, *SPACINGS], value=MODEL_SPACING, label="timestep spacing")
                    steps = gr.Slider(1, 100, value=DEFAULTS.steps, step=1, label="steps", elem_id="steps")
                    guidance = gr.Slider(1, 20, value=DEFAULTS.guidance, step=0.5, label="guidance")
                    seed = gr.Number(DEFAULTS.seed, precision=0, label="seed", elem_id="seed")
                with gr.Row():
                    size = gr.Dropdown([0, 64, 128, 256, 512, 768], value=0, label="size (0: the model's)")
                    fps = gr.Number(DEFAULTS.fps, label="fps", elem_id="fps")
                    easing = gr.Radio(list(EASINGS), value=DEFAULTS.easing, label="easing")
                    loop = gr.Checkbox(False, label="loop")
                with gr.Row():
                    frame_spacing = gr.Radio(list(FRAME_SPACINGS), value=DEFAULTS.frame_spacing,
                                             label="frame spacing (even: equal steps)")
                    adain = gr.Checkbox(DEFAULTS.adain, label="AdaIN (in-betweens: keyframes' latent statistics)")
                    attention = gr.Radio(list(ATTENTION_INTERPOLATIONS), value=DEFAULTS.attention,
                                         label="attention interpolation (AID)", elem_id="attention")
                    attention_fraction = gr.Slider(0, 1, value=DEFAULTS.attention_fraction, step=0.05,
                                                   label="attention: fraction of steps")  # fmt: skip
                with gr.Row():
                    pixelate = gr.Number(0, precision=0, label="pixelate width (0: off)")
                    scale = gr.Slider(1, 8, value=1, step=1, label="scale")
                    fmt = gr.Radio(["gif", "mp4"], value="gif", label="output format", elem_id="format")
                with gr.Accordion("init image, audio, video", open=False, elem_id="media"):
                    with gr.Row():
                        init_image = gr.Image(type="filepath", label="init image", elem_id="init-image")
                        strength = gr.Slider(0.05, 1.0, value=DEFAULTS.strength, step=0.05, label="strength")
                    with gr.Row():
                        audio = gr.Audio(type="filepath", label="audio (paces transitions; MP4 carries it)",
                                         elem_id="audio")  # fmt: skip
                        audio_smoothing = gr.Slider(0, 2, value=DEFAULTS.audio_smoothing, step=0.05,
                                                    label="loudness smoothing (s)")  # fmt: skip
                        component = gr.Radio(["percussive", "harmonic", "both"], value="percussive", label="onsets")
                        audio_button = gr.Button("keyframes from audio onsets", elem_id="audio-keyframes")
                    with gr.Row():
                        video = gr.Video(label="video (per-frame init images)", sources=["upload"], elem_id="video")
                        video_strength = gr.Slider(0.05, 1.0, value=DEFAULTS.video_strength, step=0.05,
                                                   label="video strength")  # fmt: skip
                        video_info = gr.Markdown("", elem_id="video-info")
                with gr.Row():
                    generate_button = gr.Button("generate", variant="primary", elem_id="generate")
                    stop_button = gr.Button("stop", variant="stop", elem_id="stop")
            with gr.Column(scale=2):
                status = gr.Markdown("", elem_id="status")
                preview = gr.Image(label="preview", interactive=False, elem_id="preview", height=256)
                files = gr.File(label="download", file_count="multiple", interactive=False, elem_id="files")
                gallery = gr.Gallery(label="frames (select one, then send it to the init image)", columns=8,
                                     height=240, elem_id="frames")  # fmt: skip
                send_button = gr.Button("send selected frame to init image", elem_id="send-frame")
        frames_state = gr.State([])
        selected_index = gr.State(0)

        inputs = {
            "keyframes": keyframes_box, "negative": negative, "model": model, "checkpoint": checkpoint,
            "sampler": sampler, "spacing": spacing, "steps": steps, "guidance": guidance, "seed": seed, "size": size,
            "fps": fps, "easing": easing, "loop": loop, "init_image": init_image, "strength": strength,
            "pixelate": pixelate, "scale": scale, "format": fmt, "audio": audio, "audio_smoothing": audio_smoothing,
            "video": video, "video_strength": video_strength, "frame_spacing": frame_spacing, "adain": adain,
            "attention": attention, "attention_fraction": attention_fraction,
        }  # fmt: skip
        INPUT_NAMES[:] = list(inputs)
        keyframes_box.change(check_keyframes, [keyframes_box, loop], verdict)
        loop.change(check_keyframes, [keyframes_box, loop], verdict)
        generate_button.click(
            generate, list(inputs.values()), [status, preview, files, gallery, frames_state]
        )  # fmt: skip
        stop_button.click(stop, None, None, concurrency_limit=None)
        model.change(models.sampling_for, [model, checkpoint], [sampler, steps, guidance])  # a student's own
        inspire_button.click(inspire_me, [topics, model, seed], keyframes_box)
        audio_button.click(audio_template, [audio, fps, component], keyframes_box)
        video.change(video_defaults, [video, keyframes_box], [fps, keyframes_box, video_info])
        gallery.select(selected, None, selected_index)
        send_button.click(send_frame, [frames_state, selected_index], init_image)
    return app


INPUT_NAMES: list[str] = []


def _animate(keyframes, out, settings, on_frame, **kwargs):
    from sd.gif.animate import animate

    return animate(keyframes, out, settings, on_frame=on_frame, **kwargs)


def theme():
    """Gradio's default look with the system's fonts: nothing is fetched from Google Fonts."""
    gr = require_gradio()
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(host: str = "127.0.0.1", port: int = 7860, out_dir: str | Path = "outputs/ui", block: bool = True):
    """Serve the page; with block=False return (app, url) at once (the tests)."""
    app = build_app(out_dir)
    app.queue(default_concurrency_limit=1)  # one generation at a time: they share the CPU and the model
    _, url, _ = app.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=not block,
        max_file_size=MAX_UPLOAD, allowed_paths=[str(Path(out_dir).resolve())], ssr_mode=False, theme=theme(),
        footer_links=[], quiet=not block, show_error=True,
    )  # fmt: skip
    return app, url
