"""What the GIF driver writes: GIF timing and loop flag, one palette, MP4 frames, PNG folders, pixel art,
and a frame cache that lets an interrupted run resume."""

from dataclasses import replace

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image, ImageSequence

from sd.gif.animate import animate
from sd.gif.frame_cache import FrameCache
from sd.gif.palette import shared_palette
from sd.gif.pixelate import pixelate
from sd.gif.renderer import FrameRenderer
from sd.gif.settings import GifSettings
from sd.gif.writers import write_gif
from tests.sd.gif.conftest import KEYFRAMES


def gradient_frames(n: int = 6, size: int = 32) -> list[Image.Image]:
    """Frames with many distinct colours, each a little different from the last."""
    y, x = np.mgrid[0:size, 0:size]
    channels = [[x * 8 + i * 9, y * 8, (x + y) * 4 + i * 5] for i in range(n)]
    return [Image.fromarray(np.stack(c, -1).astype(np.uint8)) for c in channels]


@pytest.mark.parametrize("fps, stored_ms", [(10, 100), (12, 80), (25, 40), (7.5, 130)])
def test_gif_durations_and_loop_flag_read_back(tmp_path, fps, stored_ms):
    path = tmp_path / "a.gif"
    write_gif(gradient_frames(), path, fps=fps)
    with Image.open(path) as gif:
        assert gif.n_frames == 6
        assert gif.info["loop"] == 0  # forever
        # round(1000 / fps) ms, stored by the format in hundredths of a second
        assert [frame.info["duration"] for frame in ImageSequence.Iterator(gif)] == [stored_ms] * 6
    write_gif(gradient_frames(), tmp_path / "once.gif", fps=fps, loop=False)
    with Image.open(tmp_path / "once.gif") as gif:
        assert "loop" not in gif.info


def test_shared_palette_is_one_palette_and_exact_for_few_colours(tmp_path):
    def palettes(path) -> set[bytes]:
        """The colour table each frame is drawn with (its local one, else the global one), parsed from the
        file itself: Pillow converts later frames to RGB when reading, which hides their tables."""
        data, tables = path.read_bytes(), set()
        flags = data[10]
        global_table, pos = b"", 13
        if flags & 0x80:
            size = 3 << ((flags & 7) + 1)
            global_table, pos = data[13 : 13 + size], 13 + size
        while data[pos] != 0x3B:  # trailer
            if data[pos] == 0x21:  # extension: label, then sub-blocks
                pos += 2
            else:  # 0x2C image descriptor, optional local table, LZW minimum code size, then sub-blocks
                packed, pos = data[pos + 9], pos + 10
                if packed & 0x80:
                    size = 3 << ((packed & 7) + 1)
                    tables.add(data[pos : pos + size])
                    pos += size
                else:
                    tables.add(global_table)
                pos += 1
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        return tables

    write_gif(gradient_frames(), tmp_path / "shared.gif", fps=10)
    assert len(palettes(tmp_path / "shared.gif")) == 1
    write_gif(gradient_frames(), tmp_path / "own.gif", fps=10, palette="per-frame")
    assert len(palettes(tmp_path / "own.gif")) > 1
    flat = [Image.fromarray(np.full((8, 8, 3), c, np.uint8)) for c in ((255, 0, 0), (0, 9, 200), (1, 2, 3))]
    palette = shared_palette(flat)
    colours = np.asarray(palette.getpalette()).reshape(-1, 3)[:3]
    assert sorted(map(tuple, colours.tolist())) == sorted([(255, 0, 0), (0, 9, 200), (1, 2, 3)])


def test_pixelate_uses_one_small_palette_across_frames():
    frames = pixelate(gradient_frames(size=64), width=16, colors=8)
    assert all(f.size == (64, 64) for f in frames)
    stacked = np.concatenate([np.asarray(f).reshape(-1, 3) for f in frames])
    assert len(np.unique(stacked, axis=0)) <= 8  # one palette of 8 colours for all frames together
    grid = np.asarray(frames[0])
    assert (grid[0:4, 0:4] == grid[0, 0]).all()  # 64 / 16 = 4x4 screen pixels per grid cell


def test_mp4_has_every_frame_and_png_folder_is_numbered(tiny_pipe, tmp_path):
    settings = GifSettings(steps=3, fps=8)
    animate(KEYFRAMES, tmp_path / "a.mp4", settings, pipe=tiny_pipe, cache_dir=None, progress=False)
    reader = imageio.get_reader(tmp_path / "a.mp4", format="FFMPEG")
    assert reader.count_frames() == 7 and reader.get_meta_data()["fps"] == 8
    assert (tmp_path / "a.mp4.json").exists()
    result = animate(KEYFRAMES, tmp_path / "frames", settings, pipe=tiny_pipe, cache_dir=None, progress=False)
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(7)]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frames" / names[3])), np.asarray(result.frames[3]))


def test_same_settings_give_the_same_bytes_and_pingpong_and_loop_counts(tiny_pipe, tmp_path):
    settings = GifSettings(steps=3)
    for name in ("a.gif", "b.gif"):
        animate(KEYFRAMES, tmp_path / name, settings, pipe=tiny_pipe, cache_dir=None, progress=False)
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()
    pingpong = animate(KEYFRAMES, None, GifSettings(steps=3, pingpong=True), pipe=tiny_pipe, cache_dir=None,
                       progress=False)  # fmt: skip
    assert len(pingpong.frames) == 7 + 5  # 0..6 then 5..1; frame 0 follows when the GIF loops
    assert np.array_equal(np.asarray(pingpong.frames[7]), np.asarray(pingpong.frames[5]))
    looped = animate(KEYFRAMES, None, GifSettings(steps=3, loop=True), pipe=tiny_pipe, cache_dir=None,
                     progress=False)  # fmt: skip
    assert len(looped.frames) == 6 + 3 and looped.specs[-1].right == 0


def test_interrupted_run_resumes_from_the_cache_and_writes_nothing_half_done(tiny_pipe, tmp_path, monkeypatch):
    settings, out, cache = GifSettings(steps=4, frame_spacing="planned"), tmp_path / "a.gif", tmp_path / "cache"
    clean = animate(KEYFRAMES, tmp_path / "clean.gif", settings, pipe=tiny_pipe, cache_dir=None, progress=False)

    finish, calls = FrameRenderer._finish, []

    def interrupted(self, *args):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return finish(self, *args)

    monkeypatch.setattr(FrameRenderer, "_finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        animate(KEYFRAMES, out, settings, pipe=tiny_pipe, cache_dir=cache, progress=False)
    assert not out.exists() and list(tmp_path.glob("*partial*")) == []
    assert len(list(cache.glob("*.safetensors"))) == 4 and list(cache.glob("*partial*")) == []
    monkeypatch.setattr(FrameRenderer, "_finish", finish)

    resumed = animate(KEYFRAMES, out, settings, pipe=tiny_pipe, cache_dir=cache, progress=False)
    assert resumed.cached_frames == 4 and resumed.unet_steps < clean.unet_steps
    assert out.read_bytes() == (tmp_path / "clean.gif").read_bytes()
    # a new fps only re-encodes: every frame comes from the cache
    again = animate(KEYFRAMES, tmp_path / "fast.gif", replace(settings, fps=24), pipe=tiny_pipe, cache_dir=cache,
                    progress=False)  # fmt: skip
    assert again.unet_steps == 0 and again.cached_frames == 7
    assert FrameCache(cache).get("0" * 32) is None
