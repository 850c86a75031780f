"""Uncertain inputs of the market model as probability distributions.

Design
------
Every distribution is sampled through its *normal score*: a standard normal
variate ``z`` is mapped to the input's value by ``from_normal(z)``, which is
``ppf(ndtr(z))`` (inverse-transform sampling, Devroye 1986, ch. II.2) unless a
closed form is exact and cheaper (normal, lognormal). Sampling everything from
normal scores is what lets :mod:`engine.market.correlation` impose a rank
correlation with a Gaussian copula, and it makes the random stream consumed
per draw independent of the distribution family (one normal per uncertain
input), which the reproducibility policy relies on (``docs/reproducibility.md``).
``Distribution.sample`` draws its scores with ``Generator.standard_normal``; the Monte
Carlo driver draws them as AS 241 ``Phi^-1`` of uniforms (``MarketModel.sample_inputs``,
``kernels.sample_kernel``).

Each distribution carries ``name``, ``unit`` and ``description``; its
parameters are checked against domains declared once in ``DOMAINS`` (used for
error messages, the docs and the hypothesis strategies of the tests). Invalid
parameters raise ``ValueError`` naming the input, the parameter and its value.

References
----------
Devroye, L. (1986). *Non-Uniform Random Variate Generation*. Springer.
Vose, D. (2008). *Risk Analysis: A Quantitative Guide*, 3rd ed., Wiley
(PERT with shape 4, triangular).
Johnson, N. L., Kotz, S., Balakrishnan, N. (1994). *Continuous Univariate
Distributions*, vol. 1 and 2, Wiley (normal, lognormal, beta, truncation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import special

__all__ = [
    "Domain", "DOMAINS", "Distribution", "Fixed", "Normal", "LogNormal", "Uniform",
    "Triangular", "PERT", "Beta", "Truncated", "Discrete", "Mixture",
    "fixed", "normal", "lognormal", "lognormal_ci", "uniform", "triangular", "pert",
    "beta", "truncated", "discrete", "empirical", "mixture",
]

#: z-score of the 95th percentile of the standard normal, used to turn a 90 %
#: interval into lognormal parameters: ``ndtri(0.95)`` (Johnson et al. 1994, ch. 13).
Z95 = float(special.ndtri(0.95))


@dataclass(frozen=True)
class Domain:
    """Allowed range of one distribution parameter.

    Parameters
    ----------
    lo, hi : float
        Bounds [same unit as the parameter].
    lo_open, hi_open : bool
        Whether the bound itself is excluded.
    finite : bool
        Whether the value must be finite.
    """

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    finite: bool = True

    def contains(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.finite and not math.isfinite(value):
            return False
        if value < self.lo or (self.lo_open and value == self.lo):
            return False
        if value > self.hi or (self.hi_open and value == self.hi):
            return False
        return True

    def describe(self) -> str:
        parts = []
        if self.lo > -math.inf:
            parts.append(("> " if self.lo_open else ">= ") + repr(self.lo))
        if self.hi < math.inf:
            parts.append(("< " if self.hi_open else "<= ") + repr(self.hi))
        if not parts:
            parts.append("finite")
        return " and ".join(parts)


#: Parameter domains, declared once: (family, parameter) -> Domain.
DOMAINS: dict[tuple[str, str], Domain] = {
    ("fixed", "value"): Domain(),
    ("normal", "mean"): Domain(),
    ("normal", "sd"): Domain(0.0, lo_open=True),
    ("lognormal", "mu"): Domain(),
    ("lognormal", "sigma"): Domain(0.0, lo_open=True),
    ("lognormal", "lo"): Domain(0.0, lo_open=True),
    ("uniform", "lo"): Domain(),
    ("triangular", "lo"): Domain(),
    ("pert", "lo"): Domain(),
    ("pert", "shape"): Domain(0.0, lo_open=True),
    ("beta", "a"): Domain(0.0, lo_open=True),
    ("beta", "b"): Domain(0.0, lo_open=True),
    ("discrete", "p"): Domain(0.0, 1.0),
    ("mixture", "weight"): Domain(0.0, 1.0),
}


def _check(family: str, param: str, value, name: str) -> float:
    """Coerce ``value`` to float and check it against ``DOMAINS``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{param} of {family} input {name!r} must be a number, got {value!r}") from None
    dom = DOMAINS.get((family, param), Domain())
    if not dom.contains(v):
        raise ValueError(f"{param} of {family} input {name!r} must be {dom.describe()}, got {v!r}")
    return v


def _order(family: str, name: str, **pairs) -> None:
    """Require strictly increasing named bounds, e.g. lo < hi."""
    items = list(pairs.items())
    for (n1, v1), (n2, v2) in zip(items, items[1:]):
        if not v1 < v2:
            raise ValueError(f"{family} input {name!r} needs {n1} < {n2}, got {n1}={v1!r}, {n2}={v2!r}")


@dataclass
class Distribution:
    """Base class: an uncertain input with a name, unit and description.

    Subclasses implement ``ppf`` and ``cdf``; ``from_normal`` maps standard
    normal scores to values (inverse transform through ``ndtr``).
    """

    name: str = field(default="", kw_only=True)
    unit: str = field(default="1", kw_only=True)
    description: str = field(default="", kw_only=True)
    source: str = field(default="", kw_only=True)

    family = "distribution"

    #: True when the input is random (consumes a normal score per draw).
    @property
    def is_random(self) -> bool:
        return True

    def ppf(self, u):  # pragma: no cover - abstract
        raise NotImplementedError

    def cdf(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def from_normal(self, z, out=None):
        """Values for standard normal scores ``z`` (inverse transform)."""
        res = self.ppf(special.ndtr(z))
        if out is not None:
            out[...] = res
            return out
        return res

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws using one standard normal per draw."""
        return self.from_normal(rng.standard_normal(size))

    @property
    def support(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def median(self) -> float:
        return float(self.ppf(np.array([0.5]))[0])

    def to_scipy(self):  # pragma: no cover - abstract
        """The equivalent ``scipy.stats`` frozen distribution (tests, docs)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.family}"


@dataclass
class Fixed(Distribution):
    """A known value (no uncertainty). ``from_normal`` ignores its scores."""

    value: float = 0.0
    family = "fixed"

    def __post_init__(self):
        self.value = _check("fixed", "value", self.value, self.name)

    @property
    def is_random(self) -> bool:
        return False

    def ppf(self, u):
        return np.full(np.shape(u), self.value)

    def cdf(self, x):
        return (np.asarray(x) >= self.value).astype(float)

    def from_normal(self, z, out=None):
        if out is not None:
            out[...] = self.value
            return out
        return np.full(np.shape(z), self.value)

    @property
    def support(self):
        return (self.value, self.value)

    def describe(self):
        return f"fixed {self.value:g}"


@dataclass
class Normal(Distribution):
    """Normal distribution N(mean, sd^2) (Johnson et al. 1994, ch. 13)."""

    mean: float = 0.0
    sd: float = 1.0
    family = "normal"

    def __post_init__(self):
        self.mean = _check("normal", "mean", self.mean, self.name)
        self.sd = _check("normal", "sd", self.sd, self.name)

    def ppf(self, u):
        return self.mean + self.sd * special.ndtri(u)

    def cdf(self, x):
        return special.ndtr((np.asarray(x, float) - self.mean) / self.sd)

    def from_normal(self, z, out=None):
        out = np.multiply(z, self.sd, out=out)
        out += self.mean
        return out

    def to_scipy(self):
        from scipy import stats
        return stats.norm(self.mean, self.sd)

    def describe(self):
        return f"normal(mean={self.mean:g}, sd={self.sd:g})"


@dataclass
class LogNormal(Distribution):
    """Lognormal: ``exp(mu + sigma z)`` (Johnson et al. 1994, ch. 14)."""

    mu: float = 0.0
    sigma: float = 1.0
    family = "lognormal"

    def __post_init__(self):
        self.mu = _check("lognormal", "mu", self.mu, self.name)
        self.sigma = _check("lognormal", "sigma", self.sigma, self.name)

    def ppf(self, u):
        return np.exp(self.mu + self.sigma * special.ndtri(u))

    def cdf(self, x):
        x = np.asarray(x, float)
        with np.errstate(divide="ignore"):
            return np.where(x > 0, special.ndtr((np.log(np.where(x > 0, x, 1.0)) - self.mu) / self.sigma), 0.0)

    def from_normal(self, z, out=None):
        out = np.multiply(z, self.sigma, out=out)
        out += self.mu
        np.exp(out, out=out)
        return out

    @property
    def support(self):
        return (0.0, math.inf)

    def to_scipy(self):
        from scipy import stats
        return stats.lognorm(s=self.sigma, scale=math.exp(self.mu))

    def describe(self):
        return (f"lognormal 90% CI [{math.exp(self.mu - Z95 * self.sigma):.4g}, "
                f"{math.exp(self.mu + Z95 * self.sigma):.4g}]")


@dataclass
class Uniform(Distribution):
    """Uniform on [lo, hi]."""

    lo: float = 0.0
    hi: float = 1.0
    family = "uniform"

    def __post_init__(self):
        self.lo = _check("uniform", "lo", self.lo, self.name)
        self.hi = _check("uniform", "hi", self.hi, self.name)
        _order("uniform", self.name, lo=self.lo, hi=self.hi)

    def ppf(self, u):
        return self.lo + (self.hi - self.lo) * np.asarray(u, float)

    def cdf(self, x):
        return np.clip((np.asarray(x, float) - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    @property
    def support(self):
        return (self.lo, self.hi)

    def to_scipy(self):
        from scipy import stats
        return stats.uniform(self.lo, self.hi - self.lo)

    def describe(self):
        return f"uniform[{self.lo:g}, {self.hi:g}]"


@dataclass
class Triangular(Distribution):
    """Triangular on [lo, hi] with the given mode (Vose 2008, sec. 10.3)."""

    lo: float = 0.0
    mode: float = 0.5
    hi: float = 1.0
    family = "triangular"

    def __post_init__(self):
        self.lo = _check("triangular", "lo", self.lo, self.name)
        self.mode = _check("triangular", "mode", self.mode, self.name)
        self.hi = _check("triangular", "hi", self.hi, self.name)
        _order("triangular", self.name, lo=self.lo, hi=self.hi)
        if not self.lo <= self.mode <= self.hi:
            raise ValueError(f"triangular input {self.name!r} needs lo <= mode <= hi, got "
                             f"lo={self.lo!r}, mode={self.mode!r}, hi={self.hi!r}")

    def ppf(self, u):
        u = np.asarray(u, float)
        a, c, b = self.lo, self.mode, self.hi
        fc = (c - a) / (b - a)
        left = a + np.sqrt(u * (b - a) * (c - a))
        right = b - np.sqrt((1.0 - u) * (b - a) * (b - c))
        return np.where(u < fc, left, right)

    def cdf(self, x):
        x = np.asarray(x, float)
        a, c, b = self.lo, self.mode, self.hi
        with np.errstate(divide="ignore", invalid="ignore"):
            left = (x - a) ** 2 / ((b - a) * (c - a))
            right = 1.0 - (b - x) ** 2 / ((b - a) * (b - c))
        return np.where(x <= a, 0.0, np.where(x >= b, 1.0, np.where(x <= c, left, right)))

    @property
    def support(self):
        return (self.lo, self.hi)

    def to_scipy(self):
        from scipy import stats
        return stats.triang((self.mode - self.lo) / (self.hi - self.lo), self.lo, self.hi - self.lo)

    def describe(self):
        return f"triangular({self.lo:g}, {self.mode:g}, {self.hi:g})"


@dataclass
class Beta(Distribution):
    """Beta(a, b) scaled to [lo, hi] (Johnson et al. 1995, ch. 25)."""

    a: float = 2.0
    b: float = 2.0
    lo: float = 0.0
    hi: float = 1.0
    family = "beta"

    def __post_init__(self):
        self.a = _check("beta", "a", self.a, self.name)
        self.b = _check("beta", "b", self.b, self.name)
        self.lo = _check("beta", "lo", self.lo, self.name)
        self.hi = _check("beta", "hi", self.hi, self.name)
        _order("beta", self.name, lo=self.lo, hi=self.hi)

    def ppf(self, u):
        return self.lo + (self.hi - self.lo) * special.betaincinv(self.a, self.b, np.asarray(u, float))

    def cdf(self, x):
        t = np.clip((np.asarray(x, float) - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        return special.betainc(self.a, self.b, t)

    @property
    def support(self):
        return (self.lo, self.hi)

    def to_scipy(self):
        from scipy import stats
        return stats.beta(self.a, self.b, loc=self.lo, scale=self.hi - self.lo)

    def describe(self):
        return f"beta(a={self.a:g}, b={self.b:g}) on [{self.lo:g}, {self.hi:g}]"


class PERT(Beta):
    """PERT(lo, mode, hi): a beta with ``a = 1 + shape (mode-lo)/(hi-lo)``,
    ``b = 1 + shape (hi-mode)/(hi-lo)``, ``shape = 4`` (Vose 2008, sec. 10.3.4)."""

    family = "pert"

    def __init__(self, lo: float, mode: float, hi: float, shape: float = 4.0, *, name: str = "",
                 unit: str = "1", description: str = "", source: str = ""):
        lo = _check("pert", "lo", lo, name)
        mode = _check("pert", "mode", mode, name)
        hi = _check("pert", "hi", hi, name)
        shape = _check("pert", "shape", shape, name)
        _order("pert", name, lo=lo, hi=hi)
        if not lo <= mode <= hi:
            raise ValueError(f"pert input {name!r} needs lo <= mode <= hi, got lo={lo!r}, mode={mode!r}, hi={hi!r}")
        self.mode = mode
        self.shape = shape
        super().__init__(a=1.0 + shape * (mode - lo) / (hi - lo), b=1.0 + shape * (hi - mode) / (hi - lo),
                         lo=lo, hi=hi, name=name, unit=unit, description=description, source=source)

    def describe(self):
        return f"pert({self.lo:g}, {self.mode:g}, {self.hi:g})"


@dataclass
class Truncated(Distribution):
    """``base`` conditioned on [lo, hi]: ``ppf(u) = base.ppf(F(lo) + u (F(hi) - F(lo)))``
    (Johnson et al. 1994, sec. 10.1)."""

    base: Distribution = None  # type: ignore[assignment]
    lo: float = -math.inf
    hi: float = math.inf
    family = "truncated"

    def __post_init__(self):
        if not isinstance(self.base, Distribution) or not self.base.is_random:
            raise ValueError(f"truncated input {self.name!r} needs a random base distribution, got {self.base!r}")
        self.lo = float(self.lo)
        self.hi = float(self.hi)
        if math.isnan(self.lo) or math.isnan(self.hi):
            raise ValueError(f"truncated input {self.name!r}: bounds must not be NaN")
        _order("truncated", self.name, lo=self.lo, hi=self.hi)
        self._flo = float(self.base.cdf(np.array([self.lo]))[0]) if math.isfinite(self.lo) else 0.0
        self._fhi = float(self.base.cdf(np.array([self.hi]))[0]) if math.isfinite(self.hi) else 1.0
        if not self._fhi - self._flo > 1e-12:
            raise ValueError(f"truncated input {self.name!r}: the base distribution has no mass on "
                             f"[{self.lo!r}, {self.hi!r}]")

    def ppf(self, u):
        v = self.base.ppf(self._flo + np.asarray(u, float) * (self._fhi - self._flo))
        return np.clip(v, self.lo, self.hi)

    def cdf(self, x):
        f = (self.base.cdf(x) - self._flo) / (self._fhi - self._flo)
        return np.clip(f, 0.0, 1.0)

    @property
    def support(self):
        blo, bhi = self.base.support
        return (max(blo, self.lo), min(bhi, self.hi))

    def to_scipy(self):
        from scipy import stats
        base = self.base.to_scipy()
        if isinstance(self.base, Normal):
            return stats.truncnorm((self.lo - self.base.mean) / self.base.sd,
                                   (self.hi - self.base.mean) / self.base.sd,
                                   loc=self.base.mean, scale=self.base.sd)
        raise NotImplementedError(f"no scipy equivalent for truncated {type(base)}")

    def describe(self):
        return f"{self.base.describe()} truncated to [{self.lo:g}, {self.hi:g}]"


@dataclass
class Discrete(Distribution):
    """Finite distribution over ``values`` with probabilities ``p`` (an empirical
    distribution when all ``p`` are equal). Quantile function: the smallest value
    whose cumulative probability reaches ``u`` (Devroye 1986, sec. III.2)."""

    values: Sequence[float] = ()
    p: Sequence[float] | None = None
    family = "discrete"

    def __post_init__(self):
        vals = np.asarray(self.values, dtype=float).ravel()
        if vals.size == 0:
            raise ValueError(f"discrete input {self.name!r} needs at least one value")
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"discrete input {self.name!r}: values must be finite, got {vals.tolist()!r}")
        if self.p is None:
            p = np.full(vals.size, 1.0 / vals.size)
        else:
            p = np.asarray(self.p, dtype=float).ravel()
            if p.shape != vals.shape:
                raise ValueError(f"discrete input {self.name!r}: {vals.size} values but {p.size} probabilities")
            for pi in p:
                _check("discrete", "p", pi, self.name)
            if abs(p.sum() - 1.0) > 1e-9:
                raise ValueError(f"discrete input {self.name!r}: probabilities must sum to 1, got {p.sum()!r}")
        order = np.argsort(vals, kind="stable")
        self.values = vals[order]
        self.p = p[order]
        self._cum = np.cumsum(self.p)
        self._cum[-1] = 1.0

    def ppf(self, u):
        idx = np.searchsorted(self._cum, np.asarray(u, float), side="left")
        return self.values[np.minimum(idx, self.values.size - 1)]

    def cdf(self, x):
        idx = np.searchsorted(self.values, np.asarray(x, float), side="right")
        cum = np.concatenate([[0.0], self._cum])
        return cum[idx]

    @property
    def support(self):
        return (float(self.values[0]), float(self.values[-1]))

    def to_scipy(self):
        from scipy import stats
        return stats.rv_discrete(values=(np.arange(self.values.size), self.p))

    def describe(self):
        return f"discrete over {self.values.size} values"


@dataclass
class Mixture(Distribution):
    """Mixture of ``components`` with ``weights`` summing to one.

    Sampled by composition on the normal score: ``u = ndtr(z)`` picks component
    ``c`` with ``W[c-1] <= u < W[c]`` (``W`` the cumulative weights) and the value
    is ``components[c].ppf((u - W[c-1]) / w[c])`` (Devroye 1986, sec. II.4). The
    marginal is exact; when components overlap the map is not monotone, so a rank
    correlation imposed on a mixture input is only approximate.
    """

    components: Sequence[Distribution] = ()
    weights: Sequence[float] = ()
    family = "mixture"

    def __post_init__(self):
        comps = list(self.components)
        w = np.asarray(self.weights, dtype=float).ravel()
        if not comps:
            raise ValueError(f"mixture input {self.name!r} needs at least one component")
        if w.size != len(comps):
            raise ValueError(f"mixture input {self.name!r}: {len(comps)} components but {w.size} weights")
        for wi in w:
            _check("mixture", "weight", wi, self.name)
        if abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"mixture input {self.name!r}: weights must sum to 1, got {w.sum()!r}")
        self.components = comps
        self.weights = w
        self._cum = np.concatenate([[0.0], np.cumsum(w)])
        self._cum[-1] = 1.0

    def ppf(self, u):
        u = np.asarray(u, float)
        out = np.empty(u.shape)
        comp = np.clip(np.searchsorted(self._cum, u, side="right") - 1, 0, len(self.components) - 1)
        for c, dist in enumerate(self.components):
            m = comp == c
            if np.any(m):
                uc = np.clip((u[m] - self._cum[c]) / self.weights[c], 0.0, 1.0)
                out[m] = dist.ppf(uc)
        return out

    def cdf(self, x):
        return sum(w * c.cdf(x) for w, c in zip(self.weights, self.components))

    @property
    def support(self):
        sup = [c.support for c in self.components]
        return (min(s[0] for s in sup), max(s[1] for s in sup))

    def describe(self):
        return f"mixture of {len(self.components)}"


# -- constructors ---------------------------------------------------------------------------

def fixed(value, **meta) -> Fixed:
    """A known value."""
    return Fixed(value=value, **meta)


def normal(mean, sd, **meta) -> Normal:
    """Normal with ``mean`` and standard deviation ``sd`` [unit of the input]."""
    return Normal(mean=mean, sd=sd, **meta)


def lognormal(mu, sigma, **meta) -> LogNormal:
    """Lognormal with log-mean ``mu`` and log-sd ``sigma``."""
    return LogNormal(mu=mu, sigma=sigma, **meta)


def lognormal_ci(lo, hi, **meta) -> LogNormal:
    """Lognormal whose 5th and 95th percentiles are ``lo`` and ``hi``.

    ``mu = (ln lo + ln hi)/2``, ``sigma = (ln hi - ln lo) / (2 z95)`` with
    ``z95 = ndtri(0.95) = 1.6449`` (Johnson et al. 1994, ch. 14; the convention
    of Guesstimate / Squiggle ``lo to hi``).

    Parameters
    ----------
    lo, hi : float
        5th and 95th percentiles [unit of the input], ``0 < lo < hi``.
    """
    name = meta.get("name", "")
    lo = _check("lognormal", "lo", lo, name)
    hi = _check("lognormal", "lo", hi, name) if hi is not None else hi
    _order("lognormal_ci", name, lo=lo, hi=hi)
    mu = 0.5 * (math.log(lo) + math.log(hi))
    sigma = (math.log(hi) - math.log(lo)) / (2.0 * Z95)
    return LogNormal(mu=mu, sigma=sigma, **meta)


def uniform(lo, hi, **meta) -> Uniform:
    """Uniform on [lo, hi]."""
    return Uniform(lo=lo, hi=hi, **meta)


def triangular(lo, mode, hi, **meta) -> Triangular:
    """Triangular on [lo, hi] with ``mode``."""
    return Triangular(lo=lo, mode=mode, hi=hi, **meta)


def pert(lo, mode, hi, shape=4.0, **meta) -> PERT:
    """PERT (modified beta) with ``lo``, ``mode``, ``hi`` and ``shape`` (default 4)."""
    return PERT(lo, mode, hi, shape, **meta)


def beta(a, b, lo=0.0, hi=1.0, **meta) -> Beta:
    """Beta(a, b) scaled to [lo, hi]."""
    return Beta(a=a, b=b, lo=lo, hi=hi, **meta)


def truncated(base: Distribution, lo=-math.inf, hi=math.inf, **meta) -> Truncated:
    """``base`` truncated to [lo, hi]; name/unit default to the base's."""
    meta.setdefault("name", base.name)
    meta.setdefault("unit", base.unit)
    meta.setdefault("description", base.description)
    return Truncated(base=base, lo=lo, hi=hi, **meta)


def discrete(values, p=None, **meta) -> Discrete:
    """Finite distribution over ``values`` with probabilities ``p``."""
    return Discrete(values=values, p=p, **meta)


def empirical(samples, **meta) -> Discrete:
    """Empirical distribution of observed ``samples`` (equal weights)."""
    return Discrete(values=samples, p=None, **meta)


def mixture(components, weights, **meta) -> Mixture:
    """Mixture of ``components`` with ``weights`` summing to one."""
    return Mixture(components=components, weights=weights, **meta)
