
import numpy as np
import pytest
import torch

from ganforge.metrics.fid import fid, frechet_distance, kid
from ganforge.metrics.memorization import memorization, nearest
from ganforge.metrics.modes import label_modes, max_kl, stacked_modes, toy_modes
from ganforge.metrics.prdc import prdc


def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert abs(fid(x, x)) < 1e-8


def test_fid_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(400, 12, generator=g), torch.randn(300, 12, generator=g) * 1.5 + 0.3
    mu1, mu2 = a.double().mean(0).numpy(), b.double().mean(0).numpy()
    s1, s2 = np.cov(a.double().numpy(), rowvar=False), np.cov(b.double().numpy(), rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert fid(a, b) == pytest.approx(expected, rel=1e-7)


def test_fid_of_two_gaussians_is_analytic():
    # N(m1, s^2 I) vs N(m2, t^2 I) in d dims: |m1 - m2|^2 + d (s - t)^2
    d = 4
    got = frechet_distance(torch.zeros(d, dtype=torch.float64), 4 * torch.eye(d, dtype=torch.float64),
                           torch.ones(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
    assert got == pytest.approx(d * 1 + d * (2 - 1) ** 2)


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(600, 8, generator=g), torch.randn(600, 8, generator=g)
    same, _ = kid(a, b, num_subsets=20, max_subset_size=300)
    diff, _ = kid(a, b + 1.0, num_subsets=20, max_subset_size=300)
    assert abs(same) < 0.02 < diff


def test_prdc_on_identical_and_disjoint_sets():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, 5, generator=g)
    r = prdc(x, x, chunk=64)
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["coverage"] == 1.0
    assert r["density"] >= 1.0  # each point is in its own ball plus its neighbours' balls
    far = prdc(x, x + 100.0, chunk=64)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_sees_a_collapsed_generator():
    g = torch.Generator().manual_seed(4)
    real = torch.randn(400, 2, generator=g)
    collapsed = real[:20].repeat(20, 1) + 0.001 * torch.randn(400, 2, generator=g)  # 20 points only
    r = prdc(real, collapsed)
    assert r["precision"] > 0.9 and r["recall"] < 0.3 and r["coverage"] < 0.3


def test_label_modes():
    r = label_modes(torch.arange(100) % 10, 10)
    assert r["modes_hit"] == 10 and r["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    r = label_modes(torch.full((50,), 3), 10)
    assert r["modes_hit"] == 1 and r["kl_to_uniform"] == pytest.approx(max_kl(10))


def test_stacked_modes_count_digit_triples():
    digits = torch.arange(1000)
    r = stacked_modes(digits // 100, digits // 10 % 10, digits % 10)
    assert r["modes_hit"] == 1000 and r["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    r = stacked_modes(torch.zeros(10, dtype=torch.long), torch.ones(10, dtype=torch.long), digits[:10] % 2)
    assert r["modes_hit"] == 2


def test_toy_modes_follow_the_pacgan_definition():
    from ganforge.data.toy import ring_centres

    centres, std = ring_centres(8, 1.0), 0.01
    g = torch.Generator().manual_seed(5)
    good = centres.repeat(50, 1) + std * torch.randn(400, 2, generator=g)
    r = toy_modes(good, centres, std)
    assert r["modes_captured"] == 8 and r["high_quality_fraction"] > 0.95 and r["reverse_kl"] < 0.01
    collapsed = centres[:2].repeat(100, 1) + std * torch.randn(200, 2, generator=g)
    far_off = torch.zeros(50, 2)  # the ring's centre is 1 away from every mode: low quality
    r = toy_modes(torch.cat([collapsed, far_off]), centres, std)
    assert r["modes_captured"] == 2 and r["high_quality_fraction"] == pytest.approx(200 / 250, abs=0.02)
    assert r["reverse_kl"] > 0.5


def test_memorization_flags_copies_and_not_fresh_samples():
    g = torch.Generator().manual_seed(6)
    train, test, fresh = (torch.rand(n, 49, generator=g) for n in (500, 200, 200))
    copies = train[:200] + 0.001
    honest = memorization(fresh, train, test)
    copied = memorization(copies, train, test)
    assert honest["suspicious_fraction"] < 0.05 and 0.8 < honest["median_train_test_ratio"] < 1.2
    assert copied["suspicious_fraction"] == 1.0 and copied["median_train_test_ratio"] < 0.01
    f, t, dist = copied["closest_pairs"][0]
    assert t == f and dist < 0.01


def test_nearest_matches_cdist():
    g = torch.Generator().manual_seed(7)
    x, ref = torch.rand(30, 10, generator=g), torch.rand(40, 10, generator=g)
    d, i = nearest(x, ref, chunk=7)
    m, j = torch.cdist(x, ref).min(1)
    torch.testing.assert_close(d, m, atol=1e-5, rtol=1e-5)
    assert torch.equal(i, j)
