"""highway-env's ``GrayscaleObservation``, rasterised in torch for all environments at once.

highway-env draws the road with pygame on a small surface centred on the ego and converts it to gray:
a grey ground (100, 100, 100), white lane markings (one pixel wide, 3 m stripes every 4.33 m on the inner
boundaries, continuous on the outer ones), and each vehicle as a 5 m x 2 m rectangle with a one-pixel dark
border and two headlight pixels, green for the ego, blue for IDM vehicles, red once crashed
(road/graphics.py, vehicle/graphics.py). World to pixel is ``int((p - origin) * scaling)`` with the origin
placing the ego at ``centering_position`` of the frame. Frames are (W, H) as highway-env's, stacked oldest
first. Vehicles turned by more than 2 degrees are drawn by rotating their sprite about its centre with
nearest-neighbour sampling, where pygame's ``transform.rotate`` may differ by a pixel.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from drive.envs.batched import constants as C
from drive.envs.batched.config import BatchedConfig
from drive.envs.batched.state import TrafficState
from drive.errors import DriveError

GREY, WHITE, BORDER = (100, 100, 100), (255, 255, 255), (60, 60, 60)
EGO, IDM, CRASHED = (50, 200, 0), (100, 200, 255), (255, 100, 100)  # VehicleGraphics EGO_COLOR, BLUE, RED
STRIPE_SPACING, STRIPE_LENGTH = 4.33, 3.0  # LaneGraphics
DEFAULTS = {
    "observation_shape": (84, 84),
    "stack_size": 4,
    "weights": [0.2989, 0.5870, 0.1140],
    "scaling": None,
    "centering_position": None,
}


def gray(rgb, weights) -> int:
    """np.dot(rgb, weights).clip(0, 255).astype(uint8), for one colour."""
    return int(np.clip(np.dot(np.array(rgb, dtype=np.float64), weights), 0, 255).astype(np.uint8))


def lighten(rgb, ratio=0.68):
    return tuple(min(int(c / ratio), 255) for c in rgb)


class _Drawn:
    """The part of a TrafficState that is drawn."""

    def __init__(self, position, heading, crashed):
        self.position, self.heading, self.crashed = position, heading, crashed
        self.num_envs = position.shape[0]


class FrameObserver:
    """Stacks of grayscale top-down frames, uint8 (N, stack, W, H), drawn on the simulator's device."""

    def __init__(self, observation: dict, config: BatchedConfig, num_envs: int, device: torch.device):
        unknown = set(observation) - set(DEFAULTS) - {"type"}
        if unknown:
            raise DriveError(f"unknown GrayscaleObservation key {sorted(unknown)[0]!r}; valid: {', '.join(DEFAULTS)}")
        o = {**DEFAULTS, **observation}
        self.width, self.height = (int(v) for v in o["observation_shape"])
        self.stack = int(o["stack_size"])
        # GrayscaleObservation: its own scaling and centering, else the env config's
        self.scaling = float(o["scaling"] or config.scaling)
        self.centering = [float(c) for c in (o["centering_position"] or config.centering_position)]
        self.lanes = config.lanes_count
        self.device = device
        weights = np.array(o["weights"], dtype=np.float64)
        self.ground = gray(GREY, weights)
        self.marking = gray(WHITE, weights)
        self.sprites = {
            name: self._sprite(rgb, weights) for name, rgb in (("ego", EGO), ("idm", IDM), ("crashed", CRASHED))
        }
        self._sprite_table = torch.stack([self.sprites[k] for k in ("ego", "idm", "crashed")])
        reach = self._sprite_table.shape[-1] + 2  # a sprite turned by a small angle still fits in this window
        offsets = torch.arange(reach, device=device, dtype=torch.int32) - reach // 2
        self._du, self._dv = torch.meshgrid(offsets, offsets, indexing="ij")
        kinds = torch.arange(3, device=device)
        self._windows = self._turned(kinds, torch.zeros(3, dtype=torch.float64, device=device))  # unturned
        # Stacks live in a ring of three preallocated buffers: shifting into the next one in place avoids a
        # fresh allocation (and its page faults) per step. A returned stack stays valid for the two steps after
        # it, long enough for SB3, which stores the previous and the new observation; copy it to keep it longer.
        shape = (num_envs, self.stack, self.width, self.height)
        self._ring = [torch.zeros(shape, dtype=torch.uint8, device=device) for _ in range(3)]
        self._head = 0
        self._canvas: torch.Tensor | None = None

    @property
    def frames(self) -> torch.Tensor:
        """(N, stack, W, H): the current stacks."""
        return self._ring[self._head]

    @property
    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0, 255, (self.stack, self.width, self.height), np.uint8)

    def reset(self, state: TrafficState, mask: torch.Tensor) -> torch.Tensor:
        """A new episode's stack: empty frames, then its first frame (highway-env makes a new observation
        object on reset and observes once). Only the envs of ``mask`` are drawn."""
        index = torch.nonzero(mask).flatten()
        fresh = torch.zeros((len(index), self.stack, self.width, self.height), dtype=torch.uint8, device=self.device)
        drawn = state.select(index)
        fresh[:, -1] = self._draw_frames(drawn.position, drawn.heading, drawn.crashed)
        # In place: the step's observation of a finished env (its terminal observation) is overwritten, so
        # callers that need it copy it first, as BatchedVecEnv does.
        self.frames[index] = fresh
        return self.frames

    def observe(self, state: TrafficState) -> torch.Tensor:
        current = self.frames
        self._head = (self._head + 1) % len(self._ring)
        stacked = self.frames
        stacked[:, :-1].copy_(current[:, 1:])
        stacked[:, -1].copy_(self.draw(state, reuse=True))
        return stacked

    # --- drawing -------------------------------------------------------------------------------------------

    def pix(self, length: torch.Tensor) -> torch.Tensor:
        """WorldSurface.pix: int() truncates towards zero."""
        return torch.trunc(length * self.scaling).long()

    def origin(self, state) -> torch.Tensor:
        """WorldSurface.move_display_window_to(ego position): the world point drawn at pixel (0, 0)."""
        shift = torch.tensor(
            [self.centering[0] * self.width / self.scaling, self.centering[1] * self.height / self.scaling],
            dtype=state.position.dtype,
            device=self.device,
        )
        return state.position[:, 0] - shift

    def draw(self, state: TrafficState, reuse: bool = False) -> torch.Tensor:
        """(N, W, H) uint8: the newest frame of each env (``reuse``: drawn on a canvas the next call reuses)."""
        return self._draw_frames(state.position, state.heading, state.crashed, reuse)

    def _draw_frames(self, position, heading, crashed, reuse: bool = False) -> torch.Tensor:
        state = _Drawn(position, heading, crashed)
        origin = self.origin(state)
        shape = (position.shape[0], self.width, self.height)
        if not reuse:
            frame = torch.full(shape, self.ground, dtype=torch.uint8, device=self.device)
        else:
            if self._canvas is None or self._canvas.shape != shape:
                self._canvas = torch.empty(shape, dtype=torch.uint8, device=self.device)
            frame = self._canvas.fill_(self.ground)
        frame = self._draw_markings(frame, origin)
        return self._draw_vehicles(frame, state, origin)

    def _stripe_start(self, origin_x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """LaneGraphics.display: the first stripe's start s0 and the stripe count."""
        count = int(2 * (self.height + self.width) / (STRIPE_SPACING * self.scaling))
        s0 = (torch.floor(torch.trunc(origin_x) / STRIPE_SPACING) - count // 2) * STRIPE_SPACING
        return s0, count

    def _draw_markings(self, frame: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
        s0, count = self._stripe_start(origin[:, 0])
        columns = torch.arange(self.width, device=self.device)
        # Continuous outer lines: one segment from s0 to s0 + count * spacing + stripe length.
        start = self.pix(s0.clamp(0, C.ROAD_LENGTH) - origin[:, 0])
        end = self.pix((s0 + count * STRIPE_SPACING + STRIPE_LENGTH).clamp(0, C.ROAD_LENGTH) - origin[:, 0])
        solid = (columns >= start[:, None]) & (columns <= end[:, None])
        striped = self._stripes(s0, count, origin[:, 0])
        # One pixel row per lane boundary, where it falls inside the frame.
        env = torch.arange(frame.shape[0], device=self.device)
        for boundary in range(self.lanes + 1):
            row = self.pix(C.LANE_WIDTH * boundary - C.LANE_WIDTH / 2 - origin[:, 1])
            inside = (row >= 0) & (row < self.height)
            row = row.clamp(0, self.height - 1)
            columns_on = (solid if boundary in (0, self.lanes) else striped) & inside[:, None]
            line = torch.where(columns_on, self.marking, frame[env, :, row])
            frame.index_put_((env[:, None], columns[None, :], row[:, None]), line)
        return frame

    def _stripes(self, s0: torch.Tensor, count: int, origin_x: torch.Tensor) -> torch.Tensor:
        """(N, W) bool: the columns covered by the inner lines' stripes that can reach the frame, each drawn
        from pix(start) to pix(end) inclusive: +1 at its first column, -1 after its last, then a running sum."""
        first = torch.floor((origin_x - s0) / STRIPE_SPACING).long() - 1
        k = first[:, None] + torch.arange(int(self.width / self.scaling / STRIPE_SPACING) + 3, device=self.device)
        k = k.clamp(0, count - 1)
        starts = (s0[:, None] + k * STRIPE_SPACING).clamp(0, C.ROAD_LENGTH)
        ends = (s0[:, None] + k * STRIPE_SPACING + STRIPE_LENGTH).clamp(0, C.ROAD_LENGTH)
        drawn = (ends - starts).abs() > 0.5 * STRIPE_LENGTH
        a, b = self.pix(starts - origin_x[:, None]), self.pix(ends - origin_x[:, None])
        drawn &= (b >= 0) & (a < self.width)
        edges = torch.zeros((len(s0), self.width + 1), dtype=torch.int32, device=self.device)
        one = drawn.int()
        edges.scatter_add_(1, a.clamp(0, self.width), one)
        edges.scatter_add_(1, (b + 1).clamp(0, self.width), -one)
        return edges[:, : self.width].cumsum(1) > 0

    def _sprite(self, rgb, weights) -> torch.Tensor:
        """VehicleGraphics.display's vehicle surface as gray values, -1 where transparent: (side, side)."""
        pix = lambda m: int(m * self.scaling)  # noqa: E731
        tire, length, width = 1.0, C.LENGTH, C.WIDTH
        side = pix(length + 2 * tire)
        sprite = np.full((side, side), -1, dtype=np.int64)

        def rect(x, y, w, h, value, outline=False):
            if outline:
                sprite[x : x + w, y] = sprite[x : x + w, y + h - 1] = value
                sprite[x, y : y + h] = sprite[x + w - 1, y : y + h] = value
            else:
                sprite[x : x + w, y : y + h] = value

        body = (pix(tire), pix((length + 2 * tire) / 2 - width / 2), pix(length), pix(width))
        light = gray(lighten(rgb), weights)
        rect(*body, gray(rgb, weights))
        rect(pix(tire + length - 0.72), pix((length + 2 * tire) / 2 - 1.4 * width / 3), pix(0.72), pix(0.6), light)
        rect(pix(tire + length - 0.72), pix((length + 2 * tire) / 2 + 0.6 * width / 5), pix(0.72), pix(0.6), light)
        rect(*body, gray(BORDER, weights), outline=True)
        return torch.as_tensor(sprite, device=self.device)

    def _draw_vehicles(self, frame: torch.Tensor, state, origin: torch.Tensor) -> torch.Tensor:
        """Each vehicle near the frame: its sprite, turned by its heading, drawn in road.vehicles order."""
        n, _ = state.heading.shape
        reach = self._windows.shape[-1]
        centre = self.pix(state.position - origin[:, None, :])  # (N, V, 2) WorldSurface.pos2pix
        visible = (centre[..., 0] > -reach) & (centre[..., 0] < self.width + reach)
        visible &= (centre[..., 1] > -reach) & (centre[..., 1] < self.height + reach)
        env, vehicle = torch.nonzero(visible, as_tuple=True)
        centre = centre[env, vehicle].int()
        kind = torch.where(state.crashed[env, vehicle], 2, (vehicle > 0).long())  # ego, IDM, crashed sprite
        heading = state.heading[env, vehicle]
        turned = torch.nonzero(heading.abs() > 2 * math.pi / 180).flatten()  # VehicleGraphics.display
        value = self._windows[kind]  # (M, reach, reach): most vehicles drive straight
        if len(turned):
            value[turned] = self._turned(kind[turned], heading[turned])
        px = centre[:, 0, None, None] + self._du
        py = centre[:, 1, None, None] + self._dv
        keep = (value >= 0) & (px >= 0) & (px < self.width) & (py >= 0) & (py < self.height)
        index = ((env.int()[:, None, None] * self.width + px) * self.height + py)[keep].long()
        key = (vehicle.int()[:, None, None] * 256 + value)[keep]
        # Later vehicles are drawn over earlier ones: per pixel, the value of the highest vehicle index wins.
        top = self._scratch(n)
        top.scatter_reduce_(0, index, key, reduce="amax")
        flat = frame.view(-1)
        flat[index] = (top[index] % 256).to(torch.uint8)
        top[index] = -1  # leave the scratch buffer clean for the next frame
        return frame

    def _turned(self, kind: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
        """(M, reach, reach) sprite values (-1: transparent) around the centre pixel of turned vehicles, each
        target pixel sampled from the sprite turned about its centre: pygame's rotate(image, -degrees(h))
        turns it by +h in the y-down pixel frame."""
        side = self._sprite_table.shape[-1]
        du, dv = self._du.to(heading.dtype), self._dv.to(heading.dtype)
        c, s = torch.cos(heading)[:, None, None], torch.sin(heading)[:, None, None]
        half = side / 2
        sx = torch.floor(c * (du + 0.5) + s * (dv + 0.5) + half).long()
        sy = torch.floor(-s * (du + 0.5) + c * (dv + 0.5) + half).long()
        inside = (sx >= 0) & (sx < side) & (sy >= 0) & (sy < side)
        value = self._sprite_table[kind[:, None, None], sx.clamp(0, side - 1), sy.clamp(0, side - 1)]
        return torch.where(inside, value, -1).int()

    def _scratch(self, n: int) -> torch.Tensor:
        """A reusable buffer of -1, one int32 per pixel of ``n`` frames."""
        size = n * self.width * self.height
        if getattr(self, "_top", None) is None or self._top.numel() < size:
            self._top = torch.full((size,), -1, dtype=torch.int32, device=self.device)
        return self._top[:size]


class ColourView:
    """highway-env's colour render (the viewer's default 600 x 150 window at 5.5 px/m) of chosen envs.

    Drawing with one-hot weights gives one RGB channel each, so the colour view is the frame rasteriser
    above, run three times, and agrees with it pixel for pixel.
    """

    def __init__(self, config: BatchedConfig, device: torch.device, size=(600, 150), scaling=5.5):
        shape = {"observation_shape": size, "stack_size": 1, "scaling": scaling, "centering_position": [0.3, 0.5]}
        self.channels = [
            FrameObserver({**shape, "weights": weights}, config, 0, device)
            for weights in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
        ]

    def render(self, state: TrafficState, env_index: int = 0) -> np.ndarray:
        """RGB uint8 (H, W, 3) of env ``env_index``."""
        one = state.select(torch.tensor([env_index], device=state.position.device))
        rgb = torch.stack([channel.draw(one)[0] for channel in self.channels], dim=-1)  # (W, H, 3)
        return rgb.transpose(0, 1).cpu().numpy()
