"""cp2tform 'similarity' fits, templates, batched warps and the inverse warp."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srkit.faces.align import (
    TEMPLATES,
    align,
    dlib5_template,
    fit_similarity,
    invert_affine,
    paste_back,
    transform_points,
    warp_affine,
)


def _similarity(scale, angle, tx, ty, reflect=False):
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    a = np.array([[c, -s], [s, c]])
    if reflect:
        a = a @ np.diag([-1.0, 1.0])
    return np.concatenate([a, [[tx], [ty]]], 1)


def _umeyama(src, dst):
    """Independent closed form of the least-squares non-reflective similarity."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    # a = sum(s.d)/|s|^2, b = sum(s x d)/|s|^2 (rotation + scale as a complex number)
    n2 = (s**2).sum()
    a = (s * d).sum() / n2
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / n2
    m = np.array([[a, -b], [b, a]])
    return np.concatenate([m, (mu_d - m @ mu_s)[:, None]], 1)


@pytest.mark.parametrize("reflect", [False, True])
def test_recovers_known_transforms(reflect):
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 250, size=(4, 5, 2))
    truth = np.stack(
        [_similarity(0.4 + i * 0.3, -0.7 + i * 0.5, 10 * i, -5 * i, reflect) for i in range(4)]
    )
    dst = np.einsum("nij,nkj->nki", truth[:, :, :2], src) + truth[:, None, :, 2]
    m = fit_similarity(src, dst).numpy()
    np.testing.assert_allclose(m, truth, atol=1e-9)
    if reflect:  # 'nonreflective similarity' cannot fit a mirror image
        m_nr = fit_similarity(src, dst, reflective=False).numpy()
        assert np.linalg.det(m_nr[0, :, :2]) > 0
        assert np.abs(m_nr - truth).max() > 1


def test_least_squares_matches_closed_form_with_noise():
    rng = np.random.default_rng(1)
    for _ in range(5):
        src = rng.uniform(20, 200, size=(5, 2))
        dst = src @ _similarity(0.5, 0.3, 4, 7)[:, :2].T + [4, 7] + rng.normal(0, 3, (5, 2))
        m = fit_similarity(src, dst)
        # MATLAB (and dlib) solve the least squares from the base points (dst) to the input
        # points (src) and invert it
        inv = invert_affine(m).numpy()
        np.testing.assert_allclose(inv, _umeyama(dst, src), atol=1e-9)
        # optimality: perturbing any similarity parameter (a, b, c, d) increases the residual
        r0 = ((transform_points(dst, inv).numpy() - src) ** 2).sum()
        a, b, c, d = inv[0, 0], inv[0, 1], inv[0, 2], inv[1, 2]
        for k in range(8):
            q = [a, b, c, d]
            q[k % 4] += 1e-3 if k < 4 else -1e-3
            p = np.array([[q[0], q[1], q[2]], [-q[1], q[0], q[3]]])
            assert ((transform_points(dst, p).numpy() - src) ** 2).sum() > r0


def test_templates():
    t = TEMPLATES["sphereface"]
    assert t.size == (112, 96)
    np.testing.assert_allclose(t.points[0], [30.2946, 51.6963])
    np.testing.assert_allclose(t.points[4], [62.7299, 92.2041])
    assert TEMPLATES["arcface"].size == (112, 112)
    np.testing.assert_allclose(TEMPLATES["arcface"].points - t.points, [[8, 0]] * 5)
    assert TEMPLATES["cosface"] is t
    fs = TEMPLATES["facesr128"]
    assert fs.size == (128, 128) and fs.landmarks == "dlib5"
    np.testing.assert_allclose(fs.points, dlib5_template(150) * 128 / 150 + (128 / 150 - 1) / 2)
    # aligning the template's own points is the identity
    np.testing.assert_allclose(fit_similarity(t.points, t.points).numpy(), np.eye(2, 3), atol=1e-9)


def test_warp_moves_points_where_the_transform_says():
    h, w = 120, 100
    img = torch.zeros(2, 1, h, w)
    src_pts = torch.tensor([[30.0, 40.0], [70.0, 80.0]])
    for p in src_pts:
        img[:, 0, int(p[1]), int(p[0])] = 1.0
    m = torch.from_numpy(
        np.stack([_similarity(1.0, math.pi / 2, 119, 0), _similarity(1.0, 0, -10, 5)])
    )
    out = warp_affine(img, m, (100, 120))
    for i in range(2):
        for p in transform_points(src_pts, m[i]):
            x, y = int(round(p[0].item())), int(round(p[1].item()))
            assert out[i, 0, y, x] == pytest.approx(1.0, abs=1e-5)
    assert out.sum().item() == pytest.approx(4.0, abs=1e-4)


def test_identity_warp_and_translation():
    img = torch.rand(1, 3, 16, 20)
    same = warp_affine(img, torch.eye(2, 3, dtype=torch.float64), (16, 20))
    torch.testing.assert_close(same, img, atol=1e-5, rtol=0)
    shifted = warp_affine(img, torch.tensor([[1.0, 0, 2], [0, 1, -3]]), (16, 20))
    torch.testing.assert_close(shifted[..., :-3, 2:], img[..., 3:, :-2], atol=1e-5, rtol=0)
    assert shifted[..., -3:, :].abs().max() < 1e-5 and shifted[..., :2].abs().max() < 1e-5


def test_align_and_paste_back_round_trip():
    torch.manual_seed(0)
    img = torch.nn.functional.interpolate(torch.rand(2, 3, 25, 25), size=(250, 250), mode="bicubic")
    lm = torch.from_numpy(TEMPLATES["facesr128"].points) * 0.9 + 60
    lm = torch.stack([lm, lm + 5])
    crops, m = align(img, lm, "facesr128")
    assert crops.shape == (2, 3, 128, 128) and m.shape == (2, 2, 3)
    np.testing.assert_allclose(
        transform_points(lm, m).numpy(), np.stack([TEMPLATES["facesr128"].points] * 2), atol=1e-6
    )
    back = paste_back(img, crops, m)
    # the face region is restored (up to two bilinear resamplings), the rest is untouched
    inner = (slice(None), slice(None), slice(90, 150), slice(90, 150))
    assert (back[inner] - img[inner]).abs().mean() < 0.01
    torch.testing.assert_close(back[..., :40, :], img[..., :40, :])
    # pasting a modified crop changes the photo only around the face
    edited = paste_back(img, torch.zeros_like(crops), m, feather=8)
    assert edited[inner].abs().max() < 1e-3
    torch.testing.assert_close(edited[..., :40, :], img[..., :40, :])
    # invert_affine really inverts
    eye = invert_affine(m)[:, :, :2] @ m[:, :, :2]
    torch.testing.assert_close(eye, torch.eye(2, dtype=eye.dtype).expand(2, 2, 2))


def test_align_scaled_template_and_errors():
    img = torch.rand(1, 3, 200, 200)
    lm = torch.from_numpy(TEMPLATES["sphereface"].points) + 40
    crop, m = align(img, lm, "sphereface", size=(224, 192))
    assert crop.shape == (1, 3, 224, 192)
    np.testing.assert_allclose(np.linalg.det(m[0, :, :2].numpy()), 4.0, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown face template"):
        align(img, lm, "nope")
    with pytest.raises(ValueError, match="takes 5"):
        align(img, lm[:4], "sphereface")


def test_warp_is_differentiable():
    img = torch.rand(1, 3, 64, 64, requires_grad=True)
    out = warp_affine(img, torch.tensor([[0.9, 0.1, 2.0], [-0.1, 0.9, 3.0]]), (50, 50))
    out.sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_antialias_when_shrinking_a_large_face():
    # a fine checkerboard (period 2 px) shrunk 4x: antialiased it averages to grey
    yy, xx = torch.meshgrid(torch.arange(512), torch.arange(512), indexing="ij")
    board = ((yy + xx) % 2).float().expand(1, 3, 512, 512)
    lm = torch.from_numpy(TEMPLATES["facesr128"].points) * 4 + 3  # crop px i -> 4i + 3
    crop, m = align(board, lm, "facesr128")
    np.testing.assert_allclose(np.linalg.det(m[0, :, :2].numpy()), 1 / 16, rtol=1e-9)
    assert (crop[..., 8:-8, 8:-8] - 0.5).abs().max() < 0.01
    aliased, _ = align(board, lm, "facesr128", antialias=False)
    assert (aliased[..., 8:-8, 8:-8] - 0.5).abs().max() > 0.4


def test_matches_matlab_cp2tform_output():
    # MATLAB: uv = [0 0; 6 3; -2 5]; xy = [-1 -1; 0 -10; 4 4];
    # tform = cp2tform(uv, xy, 'similarity'); tform.tdata.T, tformfwd(tform, uv)
    uv = np.array([[0, 0], [6, 3], [-2, 5]], float)
    xy = np.array([[-1, -1], [0, -10], [4, 4]], float)
    t_matlab = np.array([[-0.0764, -1.6190], [1.6190, -0.0764], [-3.2156, 0.0290]])
    m = fit_similarity(uv, xy).numpy()
    np.testing.assert_allclose(m[:, :2], t_matlab[:2].T, atol=1e-4)
    np.testing.assert_allclose(m[:, 2], t_matlab[2], atol=1e-4)
    xy_m = np.array([[-3.2156, 0.0290], [1.1833, -9.9143], [5.0323, 2.8853]])
    np.testing.assert_allclose(transform_points(uv, m).numpy(), xy_m, atol=1e-4)
    uv_m = np.array([[0.5698, 1.3953], [6.0872, 2.2733], [-2.6570, 4.3314]])  # tforminv
    np.testing.assert_allclose(transform_points(xy, invert_affine(m)).numpy(), uv_m, atol=1e-4)
