"""Rollout videos for ``drive watch``: the engine's colour render beside what the agent sees (highway-env's view, our
batched simulator's ``ColourView`` of its state, or EnvPool's own render).

Each decision step becomes one frame: on top the colour render, below it the observation the policy
was given (the stacked grayscale frames, oldest to newest, or the vehicle table as text), and a panel with
the step, the ego's speed, the action taken and the policy's action values.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from drive.errors import DriveError

VIDEO_SUFFIXES = (".mp4", ".gif")
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PANEL_H = 54


def action_names(env) -> list[str]:
    action_type = getattr(env.unwrapped, "action_type", None)
    names = getattr(action_type, "actions", None)
    return [names[i] for i in sorted(names)] if isinstance(names, dict) else []


def compose_frame(
    render: np.ndarray, obs, step: int, speed: float, action, values, names: list[str], values_label: str = ""
) -> np.ndarray:
    """One RGB video frame, uint8 (H, W, 3)."""
    width = render.shape[1]
    seen = _observation_image(obs, width)
    if action is None:
        label = "(episode over)"
    elif names and np.ndim(action) == 0:
        label = names[int(action)]
    else:
        label = np.array2string(np.asarray(action), precision=2)
    lines = [f"step {step}   speed {speed:5.1f} m/s   action {label}"]
    if values is not None:
        pairs = zip(names or [str(i) for i in range(len(values))], np.asarray(values).ravel(), strict=False)
        lines.append(f"{values_label}  " + "  ".join(f"{n}:{v:.2f}" for n, v in pairs))
    panel = np.full((_PANEL_H, width, 3), 20, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(panel, line, (6, 20 + 22 * i), _FONT, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    frame = np.concatenate([render, seen, panel], axis=0)
    # Video codecs want even sizes (mp4v silently crops an odd row).
    return np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)))


def _observation_image(obs, width: int) -> np.ndarray:
    obs = np.asarray(obs) if not isinstance(obs, dict) else np.asarray(obs["observation"])
    if obs.ndim == 3 and obs.dtype == np.uint8:
        # highway-env frames are (stack, W, H): transpose each to (H, W) and lay them out two per row (oldest
        # first), so that at the render's width each frame is drawn about 2.3 times its size and the 9 x 3.5 px
        # vehicles stay visible.
        tiles = [np.pad(np.ascontiguousarray(frame.T), 2, constant_values=255) for frame in obs]
        if len(tiles) % 2:
            tiles.append(np.full_like(tiles[0], 255))
        rows = [np.concatenate(tiles[i : i + 2], axis=1) for i in range(0, len(tiles), 2)]
        strip = np.concatenate(rows, axis=0)
        scale = width / strip.shape[1]
        strip = cv2.resize(strip, (width, max(1, round(strip.shape[0] * scale))), interpolation=cv2.INTER_NEAREST)
        return np.repeat(strip[:, :, None], 3, axis=2)
    rows = np.atleast_2d(obs)[:6]
    image = np.full((16 * len(rows) + 8, width, 3), 40, np.uint8)
    for i, row in enumerate(rows):
        text = " ".join(f"{v:+.2f}" for v in np.ravel(row)[:8])
        cv2.putText(image, text, (6, 16 * (i + 1)), _FONT, 0.4, (200, 255, 200), 1, cv2.LINE_AA)
    return image


def check_output(path: Path) -> None:
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DriveError(f"unknown video format {path.suffix or path.name!r}; valid: {', '.join(VIDEO_SUFFIXES)}")


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """MP4 (H.264) through imageio-ffmpeg, GIF through Pillow; frames are RGB uint8 of one even size."""
    check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        return path
    import imageio_ffmpeg

    # H.264 in yuv420p: what browsers and players decode (OpenCV's mp4v, MPEG-4 Part 2, is refused by browsers).
    # imageio-ffmpeg ships an ffmpeg build with libx264, so nothing depends on the system's codecs.
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=2,  # compose_frame pads to even sizes, all that yuv420p needs
        ffmpeg_log_level="error",
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    except (OSError, RuntimeError) as err:
        raise DriveError(f"the video {str(path)!r} could not be written ({err}); choose another --out") from None
    if not path.is_file() or path.stat().st_size == 0:
        raise DriveError(f"the video {str(path)!r} could not be written; choose another --out")
    return path


def has_display() -> bool:
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LiveWindow:
    """A pygame window showing frames as they are made (pygame ships with highway-env)."""

    def __init__(self, fps: float):
        if not has_display():
            raise DriveError("--live needs a display, and none was found (DISPLAY is unset); use --out FILE.mp4")
        import pygame

        pygame.init()
        self.pygame, self.screen, self.clock, self.fps = pygame, None, pygame.time.Clock(), fps

    def show(self, frame: np.ndarray) -> None:
        pg = self.pygame
        if self.screen is None:
            self.screen = pg.display.set_mode((frame.shape[1], frame.shape[0]))
            pg.display.set_caption("drive watch")
        pg.event.pump()
        self.screen.blit(pg.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
        pg.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        self.pygame.quit()


def record_rollouts(env, policy, episodes: int, seed: int, progress: bool = False, on_frame=None) -> list[np.ndarray]:
    """Frames of ``episodes`` greedy episodes, one per decision plus the final state of each."""
    from drive.agents.evaluation import evaluate

    frames: list[np.ndarray] = []
    names = action_names(env)

    def on_step(env, obs, action, policy):
        values = policy.action_values(obs) if action is not None else None
        speed = float(env.unwrapped.vehicle.speed)
        frame = compose_frame(env.render(), obs, len(frames), speed, action, values, names, policy.values_label)
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)

    evaluate(env, policy, episodes, seed, progress=progress, on_step=on_step, desc="watch")
    return frames


def record_batched_rollouts(sim, policy, episodes: int, progress: bool = False, on_frame=None) -> list[np.ndarray]:
    """As ``record_rollouts``, on env 0 of the batched simulator ``sim``: our colour view above the frames
    our rasteriser gave the policy. Steps ``sim`` directly, so the final state is drawn before the reset."""
    import torch
    from tqdm.auto import tqdm

    from drive.envs.batched.render import ColourView

    view, frames = ColourView(sim.config, sim.device), []
    names = meta_action_names(5)  # highway's DiscreteMetaAction

    def add(obs, action, values):
        speed = float(sim.state.speed[0, 0])
        frame = compose_frame(
            view.render(sim.state), obs[0], len(frames), speed, action, values, names, policy.values_label
        )
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)

    obs = sim.reset().cpu().numpy()
    for _ in tqdm(range(episodes), desc="watch", unit="episode", disable=not progress):
        done = False
        while not done:
            action = np.asarray(policy(obs)).reshape(sim.num_envs)
            add(obs, int(action[0]), policy.action_values(obs))
            next_obs, _, terminated, truncated, _ = sim.step(torch.as_tensor(action))
            obs, done = next_obs.cpu().numpy(), bool(terminated[0] | truncated[0])
        add(obs, None, None)
        obs = sim.reset().cpu().numpy()
    return frames


def record_envpool_rollouts(venv, policy, episodes: int, progress: bool = False, on_frame=None) -> list[np.ndarray]:
    """As ``record_rollouts``, on env 0 of an ``EnvPoolVecEnv`` made with ``render_mode="rgb_array"``: EnvPool's
    colour view above what the policy saw. A finished episode's final state comes from the step's
    ``terminal_image`` and ``terminal_observation`` (the env has already started its next episode)."""
    from tqdm.auto import tqdm

    space, frames = venv.action_space, []
    names = meta_action_names(space.n) if hasattr(space, "n") else []

    def add(image, obs, speed, action, values):
        frame = compose_frame(_enlarged(image), obs, len(frames), speed, action, values, names, policy.values_label)
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)

    obs, speed = venv.reset(), venv.reset_infos[0]["speed"]
    for _ in tqdm(range(episodes), desc="watch", unit="episode", disable=not progress):
        done = False
        while not done:
            action = np.asarray(policy(obs))
            add(venv.get_images()[0], _first(obs), speed, action[0], policy.action_values(obs))
            obs, _, dones, infos = venv.step(action)
            done, speed = bool(dones[0]), infos[0]["speed"]
        add(infos[0]["terminal_image"], infos[0]["terminal_observation"], speed, None, None)
        speed = venv.reset_infos[0]["speed"]
    return frames


def _first(obs):
    """Env 0's observation of a batch (parking's is a dict of arrays)."""
    return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]


def meta_action_names(n: int) -> list[str]:
    """highway-env's DiscreteMetaAction names for its ``n`` actions: all five, or intersection's three speeds."""
    from highway_env.envs.common.action import DiscreteMetaAction

    table = {5: DiscreteMetaAction.ACTIONS_ALL, 3: DiscreteMetaAction.ACTIONS_LONGI}.get(n, {})
    return [table[i] for i in sorted(table)]


def _enlarged(image: np.ndarray, width: int = 600) -> np.ndarray:
    """A colour view narrower than ``width`` (a pixels pool draws only its camera, e.g. 128 x 64 px) enlarged by a
    whole factor, so that each of its pixels stays a sharp square."""
    factor = -(-width // image.shape[1])
    return np.repeat(np.repeat(image, factor, 0), factor, 1) if factor > 1 else image


def watch_policy(
    *,
    run=None,
    checkpoint=None,
    policy=None,
    env=None,
    obs=None,
    algo=None,
    episodes: int = 1,
    seed: int = 0,
    out: Path | None = None,
    live: bool = False,
    fps: float = 2.0,
    backend: str = "highway-env",
    device: str = "auto",
    progress: bool = False,
) -> Path | None:
    """Record (and optionally show) rollouts; returns the video path, or None for ``--live`` alone."""
    from drive.agents.policies import check_policy_fits_backend, policy_source
    from drive.envs import make_env, make_venv
    from drive.envs.scenarios import BACKENDS
    from drive.errors import check_choice

    check_choice("backend", backend, BACKENDS)
    check_policy_fits_backend(policy, backend)
    if episodes < 1 or fps <= 0:
        raise DriveError(f"--episodes must be at least 1 and --fps positive, got {episodes} and {fps}")
    if out is None and not live:
        out = Path("videos") / "watch.mp4"
    if out is not None:
        check_output(Path(out))
    source = policy_source(run=run, checkpoint=checkpoint, policy=policy, env=env, obs=obs or "pixels", algo=algo)
    if backend in ("batched", "envpool"):  # make_venv takes the device for ours, the render mode for EnvPool's
        config = source.env_config
        venv = make_venv(
            source.env, source.obs, 1, seed=seed, backend=backend, config=config, render_mode="rgb_array", device=device
        )
        actor, scenario_env = source.make_batch(venv, seed, device), None
    else:
        scenario_env = make_env(source.env, source.obs, config=source.env_config, render_mode="rgb_array")
        actor = source.make(scenario_env, seed=seed, device=device)
    window = LiveWindow(fps) if live else None
    on_frame = window.show if window else None
    try:
        if backend == "envpool":
            frames = record_envpool_rollouts(venv, actor, episodes, progress, on_frame)
        elif backend == "batched":
            frames = record_batched_rollouts(venv.sim, actor, episodes, progress, on_frame)
        else:
            frames = record_rollouts(scenario_env, actor, episodes, seed, progress, on_frame)
    finally:
        (venv if scenario_env is None else scenario_env).close()
        if window is not None:
            window.close()
    return write_video(Path(out), frames, fps) if out is not None else None
