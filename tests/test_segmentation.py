"""SEP extraction and the galaxy of interest (core.segmentation), shared by the fitter and prep."""

from __future__ import annotations

import numpy as np
import pytest

from core.segmentation import SegmentationError, detect, extract_segments, find_goi, goi_mask


def test_extraction_accepts_what_sep_refuses(scene):
    ref = extract_segments(scene["input"])[1]
    assert len(np.unique(ref)) - 1 == 2  # galaxy + interloper
    for arr in (scene["input"].astype(">f4"), scene["input"].astype(np.float16),
                np.round(scene["input"] * 100).astype(np.int64), np.asfortranarray(scene["input"])):
        seg = extract_segments(arr)[1]
        assert len(np.unique(seg)) - 1 == 2


def test_extraction_raises_sep_limits(scene, monkeypatch):
    import sep

    old = sep.get_extract_pixstack()
    try:
        sep.set_extract_pixstack(50)  # far too small: SEP overflows, prep raises the limit and retries
        seg = extract_segments(scene["input"])[1]
        assert len(np.unique(seg)) - 1 == 2
        assert sep.get_extract_pixstack() > 50
    finally:
        sep.set_extract_pixstack(old)


def test_goi_mask_under_centroid_nearest_and_none():
    seg = np.zeros((20, 20), np.int32)
    seg[5:10, 5:10] = 1
    seg[15:18, 15:18] = 2
    mask, label, d = goi_mask(seg, 7.2, 6.8)
    assert label == 1 and d == 0 and mask.sum() == 25
    mask, label, d = goi_mask(seg, 12.0, 16.0, search_radius=3)  # nearest: column 15 of segment 2
    assert label == 2 and d == 3.0
    with pytest.raises(SegmentationError, match="no segment"):
        goi_mask(seg, 2.0, 18.0, search_radius=3)
    with pytest.raises(SegmentationError, match="off the"):
        goi_mask(seg, 25.0, 3.0)


def test_find_goi_does_not_raise_and_measures_from_the_pixel():
    seg = np.zeros((20, 20), np.int32)
    seg[5:10, 5:10] = 1
    assert find_goi(seg, 7.2, 6.8) == (1, 0.0)
    label, d = find_goi(seg, 12.4, 7.0, search_radius=3)  # pixel (12, 7): column 9 is 3 px away
    assert label == 1 and d == 3.0
    label, d = find_goi(seg, 2.0, 18.0, search_radius=3)
    assert label == 0 and np.isnan(d)
    # off the image, a segment within the radius of the position's pixel is still found
    seg[0:2, 12:15] = 2
    assert find_goi(seg, 13.0, -2.0, search_radius=3) == (2, 2.0)
    label, d = find_goi(seg, 13.0, -4.0, search_radius=3)  # 4 px away
    assert label == 0 and np.isnan(d)


def test_the_fitter_and_prep_share_detection(scene, monkeypatch):
    """The fitter detects through core.segmentation.detect: it too survives a tiny SEP pixel stack."""
    import sep

    from core.fitting import fit as fitter

    calls = []
    real = detect

    def spy(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(fitter, "detect", spy)
    old = sep.get_extract_pixstack()
    try:
        sep.set_extract_pixstack(50)
        psf = np.exp(-((np.arange(11) - 5)[:, None] ** 2 + (np.arange(11) - 5)[None, :] ** 2) / 4.0)
        fit = fitter.fit_sersic(scene["input"], psf, zeropoint=25.0)
        assert sep.get_extract_pixstack() > 50
    finally:
        sep.set_extract_pixstack(old)
    assert len(calls) == 1 and calls[0]["mask"] is not None
    assert fit.goi_label > 0 and fit.segmap[50, 50] == fit.goi_label
    assert abs(fit.value("XC") - 50.6) < 0.5 and abs(fit.value("YC") - 51.3) < 0.5
