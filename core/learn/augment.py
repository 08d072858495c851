"""Train/test split and class-balanced, on-the-fly augmentation (paper §3.2).

* :func:`split_sample` — a seeded 80/20 split stratified by class; fit-quality-flagged galaxies
  (and anything not trainable) are ``"excluded"``. ``resx prep`` stores it in the catalog's
  ``split`` column.
* :func:`augment_dataset` — a ``tf.data`` pipeline whose every epoch draws ``per_class`` images of
  each class (with replacement, so rare classes are resampled — paper: 5,000 per class) and
  applies a random horizontal flip and a random rotation by a multiple of ``rotation_step_deg``
  (45°). Nothing is stored: each epoch draws new images and new transforms.

Rotations are pixel permutations: multiples of 90° are exact (``rot90``); other angles use
nearest-neighbour sampling, which moves pixels without averaging them, so the noise keeps its
amplitude and texture (bilinear interpolation would smooth the noise and let a network tell
rotated images from unrotated ones). Pixels a 45° rotation brings in from beyond the stamp's
corners are taken from the mirror image across the edge (stamps are object-only: sky there).
Every (flip, angle) pair is one precomputed index map, so augmenting a batch is a single
vectorised ``tf.gather`` — cheap enough not to slow training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from core.labels import CLASSES

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "excluded")


def split_sample(labels: Sequence[str], fit_quality: Sequence[bool] | None = None, test_fraction: float = 0.2,
                 seed: int = 42) -> np.ndarray:
    """Stratified train/test split; fit-quality galaxies excluded.

    Parameters
    ----------
    labels : sequence of str
        Class of each galaxy (one of :data:`core.labels.CLASSES`, or ``""`` when unknown:
        unlabelled galaxies form their own stratum, usable by the unsupervised model). Any other
        label (``"FitQuality"``, ``"Skip"``) is excluded.
    fit_quality : sequence of bool, optional
        True for galaxies with a fit-quality issue (excluded).
    test_fraction : float
        Fraction of each class in the test set (rounded per class).
    seed : int
        Random seed; the same seed and labels give the same split.

    Returns
    -------
    numpy.ndarray of str
        ``"train"``, ``"test"`` or ``"excluded"`` per galaxy.

    Examples
    --------
    >>> split_sample(["Clean"] * 5, seed=0).tolist().count("test")
    1
    """
    labels = np.array([str(s).strip() for s in labels], dtype=object)
    n = len(labels)
    fq = np.zeros(n, bool) if fit_quality is None else np.asarray(fit_quality, dtype=bool)
    if not 0 <= test_fraction <= 1:
        raise ValueError(f"test_fraction must be in [0, 1], not {test_fraction}")
    out = np.full(n, "excluded", dtype="U8")
    rng = np.random.default_rng(seed)
    for cls in ("",) + tuple(CLASSES):
        idx = np.nonzero((labels == cls) & ~fq)[0]
        if idx.size == 0:
            continue
        idx = rng.permutation(idx)
        n_test = int(round(test_fraction * idx.size))
        out[idx[:n_test]] = "test"
        out[idx[n_test:]] = "train"
    return out


def transform_index_maps(size: int, rotation_step_deg: float = 45, flip: bool = True) -> np.ndarray:
    """Index maps of every (flip, rotation) pair: ``out.flat = in.flat[maps[t]]``.

    Returns
    -------
    numpy.ndarray of int32, shape (n_transforms, size * size)
        Transform ``t = f * n_angles + k``: horizontal flip ``f`` (0/1) then a rotation by
        ``k * rotation_step_deg`` (counter-clockwise as displayed with origin lower-left).
    """
    if rotation_step_deg <= 0 or (360 / rotation_step_deg) % 1:
        raise ValueError(f"rotation_step_deg must divide 360, not {rotation_step_deg}")
    n_angles = int(round(360 / rotation_step_deg))
    base = np.arange(size * size, dtype=np.int32).reshape(size, size)
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    def reflect(i):
        i = np.where(i < 0, -i - 1, i)
        i = np.where(i >= size, 2 * size - 1 - i, i)
        return np.clip(i, 0, size - 1)

    maps = []
    for f in ([0, 1] if flip else [0]):
        img = base[:, ::-1] if f else base
        for k in range(n_angles):
            angle = k * rotation_step_deg
            quarter, rest = divmod(angle, 90)
            rot = np.rot90(img, int(quarter))  # exact for multiples of 90 degrees
            if rest:
                t = np.deg2rad(rest)
                # output pixel (y, x) <- input pixel rotated back by -t around the centre
                sx = c + np.cos(t) * (xx - c) - np.sin(t) * (yy - c)
                sy = c + np.sin(t) * (xx - c) + np.cos(t) * (yy - c)
                rot = rot[reflect(np.rint(sy).astype(int)), reflect(np.rint(sx).astype(int))]
            maps.append(np.ascontiguousarray(rot).ravel())
    return np.stack(maps).astype(np.int32)


def augment_numpy(image: np.ndarray, transform: int, rotation_step_deg: float = 45, flip: bool = True) -> np.ndarray:
    """Apply transform number ``transform`` (see :func:`transform_index_maps`) to one stamp."""
    size = image.shape[0]
    maps = transform_index_maps(size, rotation_step_deg, flip)
    return image.reshape(size * size, *image.shape[2:])[maps[transform]].reshape(image.shape)


def augment_dataset(images: np.ndarray, labels: Sequence | None, per_class: int = 5000, batch_size: int = 32,
                    seed: int = 42, rotation_step_deg: float = 45, flip: bool = True,
                    start_epoch: int | None = None):
    """Class-balanced, augmented training batches, generated on the fly.

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, S, S)`` or ``(n, S, S, 1)`` scaled stamps.
    labels : sequence of str or int, or None
        Class names (:data:`core.labels.CLASSES`) or indices 0..4. ``None``: no balancing (each
        epoch draws ``per_class * 5`` images uniformly) and ``y`` is all zero.
    per_class : int
        Images drawn per class per epoch (with replacement).
    batch_size : int
        Batch size (the last batch of an epoch may be smaller).
    seed : int
        Seed: the same seed gives the same sequence of epochs; each epoch differs.
    rotation_step_deg : float
        Rotations are random multiples of this angle.
    flip : bool
        Random horizontal flips.
    start_epoch : int, optional
        ``None``: one epoch, re-drawn each time the dataset is iterated. An integer: the endless
        sequence of epochs ``start_epoch, start_epoch + 1, ...``, each epoch's draws a function of
        ``(seed, epoch)`` only (stateless random numbers), so a resumed training run continues
        with exactly the epochs it would have seen (:mod:`core.learn.training`).

    Returns
    -------
    tf.data.Dataset
        One epoch of ``(x, y)`` (or the endless sequence of epochs, each ending with its own
        possibly smaller last batch): ``x`` ``(B, S, S, 1)`` float32, ``y`` one-hot ``(B, 5)``
        float32; ``per_class * n_classes`` images per epoch, ``n_classes`` the classes present.
    """
    import tensorflow as tf

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"images must be (n, S, S) or (n, S, S, 1), got {np.shape(images)}")
    n, size = x.shape[0], x.shape[1]
    n_cls = len(CLASSES)
    if labels is None:
        y_idx = np.zeros(n, np.int64)
        onehot = np.zeros((n, n_cls), np.float32)
        pools = [np.arange(n)]
        per_pool = per_class * n_cls
    else:
        labels = np.asarray(labels)
        if labels.dtype.kind in "iu":
            y_idx = labels.astype(np.int64)
        else:
            lookup = {c: i for i, c in enumerate(CLASSES)}
            try:
                y_idx = np.array([lookup[str(s).strip()] for s in labels], np.int64)
            except KeyError as exc:
                raise ValueError(f"unknown class {exc.args[0]!r}; expected one of {CLASSES}") from None
        if len(y_idx) != n:
            raise ValueError(f"{n} images but {len(y_idx)} labels")
        onehot = np.eye(n_cls, dtype=np.float32)[y_idx]
        pools = [np.nonzero(y_idx == c)[0] for c in range(n_cls)]
        absent = [CLASSES[c] for c, p in enumerate(pools) if p.size == 0]
        if absent:
            log.warning("no training image of class(es) %s: balancing over the others", ", ".join(absent))
        pools = [p for p in pools if p.size]
        per_pool = per_class
    if not pools:
        raise ValueError("no images to augment")
    order = np.concatenate(pools).astype(np.int64)
    sizes = np.array([p.size for p in pools], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    n_pools = len(pools)
    n_total = per_pool * n_pools
    maps = transform_index_maps(size, rotation_step_deg, flip)
    n_tf = maps.shape[0]

    x_flat = tf.constant(x.reshape(n, size * size))
    y_t = tf.constant(onehot)
    maps_t = tf.constant(maps)
    order_t, sizes_t, offsets_t = tf.constant(order), tf.constant(sizes), tf.constant(offsets)
    pool_of = tf.repeat(tf.range(n_pools, dtype=tf.int64), per_pool)

    def plan(r):
        r = tf.bitwise.right_shift(tf.abs(r), 1)  # non-negative 62-bit integers
        pool = tf.gather(pool_of, tf.argsort(r[:n_total], stable=True))  # exact counts, shuffled
        within = tf.math.floormod(r[n_total : 2 * n_total], tf.gather(sizes_t, pool))
        idx = tf.gather(order_t, tf.gather(offsets_t, pool) + within)
        t = tf.math.floormod(r[2 * n_total :], n_tf)
        return idx, t

    def apply(idx, t):
        xb = tf.gather(x_flat, idx)
        xb = tf.gather(xb, tf.gather(maps_t, t), batch_dims=1)
        return tf.reshape(xb, (-1, size, size, 1)), tf.gather(y_t, idx)

    if start_epoch is None:
        ds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(3 * n_total).take(1)
        ds = ds.map(plan).unbatch().batch(batch_size)
    else:
        def draws(epoch):
            return tf.random.stateless_uniform([3 * n_total], seed=tf.stack([tf.constant(seed, tf.int64), epoch]),
                                               minval=None, maxval=None, dtype=tf.int64)

        ds = tf.data.Dataset.counter(int(start_epoch), dtype=tf.int64).map(draws).map(plan)
        ds = ds.flat_map(lambda idx, t: tf.data.Dataset.from_tensor_slices((idx, t)).batch(batch_size))
    ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
