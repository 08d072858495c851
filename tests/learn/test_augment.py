"""Split, on-the-fly augmentation (paper §3.2) and scaling (§3.1)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from core.labels import CLASSES
from core.learn.augment import augment_dataset, augment_numpy, split_sample, transform_index_maps
from core.learn.scaling import StampScaler, scale_stamps


def test_split_is_stratified_seeded_and_excludes_fit_quality():
    labels = ["Clean"] * 50 + ["Core"] * 20 + ["Peculiar"] * 5 + ["FitQuality"] * 3 + [""] * 10
    fq = np.zeros(len(labels), bool)
    fq[:2] = True
    s = split_sample(labels, fq, test_fraction=0.2, seed=1)
    lab = np.array(labels)
    assert set(s[:2]) == {"excluded"} and set(s[lab == "FitQuality"]) == {"excluded"}
    assert np.sum((lab == "Clean") & (s == "test")) == round(0.2 * 48)
    assert np.sum((lab == "Core") & (s == "test")) == 4
    assert np.sum((lab == "Peculiar") & (s == "test")) == 1
    assert np.sum((lab == "") & (s == "test")) == 2
    assert_array_equal(s, split_sample(labels, fq, 0.2, seed=1))
    assert not np.array_equal(s, split_sample(labels, fq, 0.2, seed=2))


def test_rotations_by_90_are_exact_and_45_keeps_pixel_values():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(50, 50)).astype(np.float32)
    maps = transform_index_maps(50, 45, flip=True)
    assert maps.shape == (16, 2500)
    assert_array_equal(augment_numpy(img, 0), img)
    assert_array_equal(augment_numpy(img, 2), np.rot90(img, 1))
    assert_array_equal(augment_numpy(img, 4), np.rot90(img, 2))
    assert_array_equal(augment_numpy(img, 8), img[:, ::-1])
    assert_array_equal(augment_numpy(img, 10), np.rot90(img[:, ::-1], 1))
    r45 = augment_numpy(img, 1)
    assert np.isin(r45, img).all()  # nearest neighbour: pixel values moved, never averaged
    assert_allclose(r45.std(), img.std(), rtol=0.05)  # the noise keeps its amplitude
    # two 45-degree steps ~ one 90-degree step (nearest neighbour, so most pixels agree)
    assert np.mean(augment_numpy(r45, 1) == np.rot90(img)) > 0.6
    # the centre stays in the centre
    spot = np.zeros((51, 51))
    spot[25, 25] = 1
    for t in range(16):
        assert augment_numpy(spot, t)[25, 25] == 1


@pytest.mark.slow
def test_augment_dataset_is_balanced_seeded_and_fresh_each_epoch():
    rng = np.random.default_rng(1)
    n = 40
    imgs = rng.normal(size=(n, 20, 20)).astype(np.float32)
    labels = np.array(["Clean"] * 25 + ["Core"] * 8 + ["General"] * 4 + ["Asymmetric"] * 2 + ["Peculiar"])
    ds = augment_dataset(imgs, labels, per_class=30, batch_size=16, seed=5)
    epoch1 = [(x.numpy(), y.numpy()) for x, y in ds]
    epoch2 = [(x.numpy(), y.numpy()) for x, y in ds]
    x1 = np.concatenate([e[0] for e in epoch1])
    y1 = np.concatenate([e[1] for e in epoch1])
    assert x1.shape == (150, 20, 20, 1) and x1.dtype == np.float32
    assert y1.shape == (150, 5) and epoch1[0][0].shape == (16, 20, 20, 1)
    assert_array_equal(y1.sum(axis=0), [30] * 5)
    # each augmented image is a flipped/rotated copy of an input of its class
    lookup = {c: i for i, c in enumerate(CLASSES)}
    maps = transform_index_maps(20, 45, True)
    flat = imgs.reshape(n, -1)
    for x, y in zip(x1[:20], y1[:20]):
        cands = flat[:, maps].reshape(n, 16, -1)
        hit = np.argwhere((cands == x.ravel()).all(axis=-1))
        assert len(hit) and lookup[labels[hit[0, 0]]] == int(np.argmax(y))
    x2 = np.concatenate([e[0] for e in epoch2])
    assert not np.array_equal(x1, x2)
    again = np.concatenate([x.numpy() for x, _ in augment_dataset(imgs, labels, per_class=30, batch_size=16, seed=5)])
    assert_array_equal(x1, again)
    # integer labels work, and unlabelled data (CvAE) too
    ints = np.array([lookup[s] for s in labels])
    y_int = np.concatenate([y.numpy() for _, y in augment_dataset(imgs, ints, per_class=3, batch_size=8)])
    assert_array_equal(y_int.sum(0), [3] * 5)
    n_unl = sum(x.shape[0] for x, _ in augment_dataset(imgs, None, per_class=2, batch_size=4))
    assert n_unl == 10
    with pytest.raises(ValueError, match="unknown class"):
        augment_dataset(imgs, ["Spiral"] * n)


def test_maxabs_per_stamp_and_per_sample():
    x = np.array([[[1.0, -2.0], [0.5, 0.0]], [[10.0, 5.0], [-4.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    per_stamp = scale_stamps(x)
    assert per_stamp.dtype == np.float32
    assert_allclose(per_stamp[0], [[0.5, -1], [0.25, 0]])
    assert_allclose(per_stamp[1], [[1, 0.5], [-0.4, 0]])
    assert_array_equal(per_stamp[2], 0)  # an all-zero stamp stays zero
    per_sample = scale_stamps(x, per="sample")
    assert_allclose(per_sample, x / 10)
    scaler = StampScaler(per="sample").fit(x[:1])
    assert scaler.max_abs_ == 2.0
    assert scaler.transform(x[1:2]).max() == 1.0  # clipped to [-1, 1]


@pytest.mark.parametrize("method", ["standard", "robust", "minmax", "power", "quantile"])
@pytest.mark.parametrize("per", ["stamp", "sample"])
def test_sklearn_scalers_land_in_unit_range(method, per):
    x = np.random.default_rng(0).normal(size=(4, 8, 8)) * np.array([1, 10, 100, 0.1])[:, None, None]
    out = scale_stamps(x, method=method, per=per)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1 and np.abs(out).max() > 0.5
    with pytest.raises(ValueError):
        scale_stamps(x, method="log")
