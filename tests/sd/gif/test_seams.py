"""Where other work plugs into the GIF driver: the denoise context around each batch, and input provenance."""

from contextlib import contextmanager

import numpy as np
from PIL import Image

from sd.gif.animate import animate
from sd.gif.settings import GifSettings
from tests.sd.gif.conftest import KEYFRAMES


class Recording:
    """A denoise context that records what it wraps and which UNet calls ran inside it."""

    def __init__(self, unet, captures: bool) -> None:
        self.captures_keyframes, self.unet, self.log = captures, unet, []

    @contextmanager
    def _around(self, what):
        calls = []
        handle = self.unet.register_forward_pre_hook(lambda *_: calls.append(1))
        try:
            yield
        finally:
            handle.remove()
            self.log.append((what, len(calls)))

    def keyframes(self, indices):
        return self._around(("keyframes", tuple(indices)))

    def in_betweens(self, specs):
        return self._around(("in-betweens", tuple(round(s.weight, 3) for s in specs)))


def run(pipe, denoising=None, cache_dir=None, **settings):
    settings = GifSettings(steps=5, frame_spacing="planned", **settings)
    return animate(KEYFRAMES, settings=settings, pipe=pipe, cache_dir=cache_dir, progress=False, denoising=denoising)


def test_denoise_context_wraps_keyframes_first_then_in_betweens_and_changes_nothing_itself(tiny_pipe):
    plain = run(tiny_pipe)
    recording = Recording(tiny_pipe.checkpoint.unet, captures=False)
    wrapped = run(tiny_pipe, recording, batch=2)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(plain.frames, wrapped.frames, strict=True))
    kinds = [what[0] for what, _ in recording.log]
    assert kinds == ["keyframes", "keyframes", "in-betweens", "in-betweens"]  # 3 keyframes, 4 in-betweens, by 2
    assert recording.log[0][0] == ("keyframes", (0, 1)) and recording.log[2][0][1] == (0.333, 0.667)
    branch = round(5 * 0.8)
    assert [calls for _, calls in recording.log] == [5, 5, 5 - branch, 5 - branch]  # every UNet call is inside


def test_a_capturing_context_gets_its_keyframes_denoised_even_when_they_are_cached(tiny_pipe, tmp_path):
    run(tiny_pipe, cache_dir=tmp_path)  # everything cached
    plain = Recording(tiny_pipe.checkpoint.unet, captures=False)
    assert run(tiny_pipe, plain, cache_dir=tmp_path).unet_steps == 0 and plain.log == []
    capturing = Recording(tiny_pipe.checkpoint.unet, captures=True)
    assert run(tiny_pipe, capturing, cache_dir=tmp_path).unet_steps == 0  # no in-between to render: no capture
    # --max-jump then renders one new in-between: the two keyframes it blends run again, to be captured
    again = run(tiny_pipe, capturing, cache_dir=tmp_path, max_jump=1e-6, max_frames=8)
    (first, _), (second, _), (between, _) = capturing.log
    assert first[0] == second[0] == "keyframes" and second[1][0] == first[1][0] + 1 and between[0] == "in-betweens"
    assert len(again.frames) == 8 and again.unet_steps == 2 * 5 + (5 - round(5 * 0.8))


def test_input_hashes_are_returned_and_recorded_not_written_into_the_callers_settings(tiny_pipe, tmp_path):
    image = tmp_path / "init.png"
    Image.fromarray(np.full((64, 64, 3), (10, 200, 30), np.uint8)).save(image)
    settings = GifSettings(steps=3, init_image=str(image))
    result = animate(KEYFRAMES, tmp_path / "a.gif", settings, pipe=tiny_pipe, cache_dir=None, progress=False)
    assert settings.init_image_sha256 is None and settings == GifSettings(steps=3, init_image=str(image))
    assert len(result.inputs["init_image"]) == 64 and set(result.inputs) == {"init_image"}
    assert result.record["settings"]["init_image_sha256"] == result.inputs["init_image"]
