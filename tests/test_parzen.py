import math

import numpy as np
import pytest
import torch

from ganforge.metrics.parzen import (SIGMAS, log_likelihoods, parzen_log_likelihoods, parzen_protocol,
                                     squared_distances)


def slow_parzen(x: np.ndarray, mu: np.ndarray, sigma: float) -> np.ndarray:
    """An independent, loop-based transcription of the paper's formula."""
    out = []
    for xi in x:
        a = (xi[None, :] - mu) / sigma
        e = -0.5 * (a ** 2).sum(1)
        m = e.max()
        out.append(m + math.log(np.exp(e - m).mean()) - mu.shape[1] * math.log(sigma * math.sqrt(2 * math.pi)))
    return np.array(out)


def test_sigma_grid_is_the_papers():
    np.testing.assert_allclose(SIGMAS, np.logspace(-1, 0, 10))
    assert len(SIGMAS) == 10 and SIGMAS[0] == pytest.approx(0.1) and SIGMAS[-1] == pytest.approx(1.0)


def test_matches_a_slow_implementation():
    rng = np.random.default_rng(0)
    x, mu = rng.random((7, 20)), rng.random((30, 20))
    sigmas = (0.1, 0.3, 1.0)
    exact = parzen_log_likelihoods(torch.from_numpy(x), torch.from_numpy(mu), sigmas, chunk=3, dtype=torch.float64)
    fast = parzen_log_likelihoods(torch.from_numpy(x), torch.from_numpy(mu), sigmas, chunk=3)  # float32
    for k, sigma in enumerate(sigmas):
        np.testing.assert_allclose(exact[k].numpy(), slow_parzen(x, mu, sigma), rtol=1e-10)
        np.testing.assert_allclose(fast[k].numpy(), slow_parzen(x, mu, sigma), rtol=1e-5)
    assert not np.allclose(exact[0].numpy(), slow_parzen(x, mu, 0.3))  # the sigma matters


def test_single_centre_is_the_gaussian_log_density():
    # With one kernel centre, the Parzen estimate is exactly an isotropic Gaussian's log-density.
    torch.manual_seed(0)
    d, sigma = 5, 0.7
    mu, x = torch.randn(1, d), torch.randn(100, d)
    ll = log_likelihoods(squared_distances(x, mu, torch.float64), sigma, d)
    gauss = torch.distributions.MultivariateNormal(mu[0].double(), sigma ** 2 * torch.eye(d, dtype=torch.float64))
    torch.testing.assert_close(ll, gauss.log_prob(x.double()))


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_many_centres_from_a_gaussian_approach_its_entropy():
    # Centres drawn from N(0, s^2 I) with a small kernel: the estimate of E[log p] on fresh samples
    # approaches the true value -d/2 log(2 pi e s^2) from below; check both sides of a band.
    torch.manual_seed(1)
    d, s = 2, 1.0
    centres, test = torch.randn(20000, d) * s, torch.randn(2000, d) * s
    ll = log_likelihoods(squared_distances(test, centres), 0.1, d).mean().item()
    truth = -d / 2 * math.log(2 * math.pi * math.e * s ** 2)
    assert truth - 0.15 < ll < truth + 0.05


def test_protocol_picks_the_best_sigma_and_reports_stderr():
    torch.manual_seed(2)
    data = torch.rand(600, 10)
    res = parzen_protocol(data[:300], data[300:400], data[400:])
    assert res.sigma == max(res.valid_ll, key=res.valid_ll.get)
    assert set(res.valid_ll) == set(SIGMAS)
    d2 = squared_distances(data[400:], data[:300])
    ll = log_likelihoods(d2, res.sigma, 10)
    assert res.mean == pytest.approx(ll.mean().item())
    assert res.stderr == pytest.approx(np.std(ll.numpy()) / math.sqrt(200))
    brute = np.array([[((t - c) ** 2).sum() for c in data[:300].numpy()] for t in data[400:].numpy()])
    assert res.test_nearest_d2 == pytest.approx(brute.min(1).mean(), rel=1e-5)
    # centres that are the test points themselves score higher than unrelated centres
    worse = parzen_protocol(torch.rand(300, 10) * 0.5, data[300:400], data[400:])
    assert worse.mean < res.mean


def test_float32_distances_are_exact_enough_at_mnist_scale():
    # d = 784 pixels in [0, 1], the smallest sigma of the grid: the dtype changes the score by < 1e-2 nats
    g = torch.Generator().manual_seed(3)
    x, mu = torch.rand(50, 784, generator=g), torch.rand(400, 784, generator=g)
    a = log_likelihoods(squared_distances(x, mu, torch.float64), 0.1, 784)
    b = log_likelihoods(squared_distances(x, mu), 0.1, 784)
    assert (a - b).abs().max().item() < 1e-2
