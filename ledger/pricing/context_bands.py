"""Input-size bands. Some models reprice the whole request above an input-size threshold (long context);
the hourly rollup keeps requests of different bands apart so the catalog can price them right. Pure."""

from __future__ import annotations

from bisect import bisect_left

# Every long-context threshold the price catalog uses must be one of these (total input tokens, the
# request is repriced when its input is strictly above the threshold).
CONTEXT_BAND_THRESHOLDS: tuple[int, ...] = (100_000, 128_000, 200_000, 272_000)


def context_band(total_input_tokens: int) -> int:
    """The number of thresholds strictly below `total_input_tokens` (0 = base band)."""
    return bisect_left(CONTEXT_BAND_THRESHOLDS, total_input_tokens)
