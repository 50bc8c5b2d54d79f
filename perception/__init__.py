"""Everything that sees: CNN encoders over stacked grayscale frames."""

from drive.perception.encoders import ENCODERS, NatureEncoder, ResidualEncoder, normalize_frames

__all__ = ["ENCODERS", "NatureEncoder", "ResidualEncoder", "normalize_frames"]
