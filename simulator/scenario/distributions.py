"""Latency distributions: one small validated model per ``dist``, all in milliseconds.

Each class validates its parameters when the scenario is loaded, samples a numpy batch from a
``numpy.random.Generator`` (``sample(rng, n)``), knows its analytic mean (``mean()``, ms), its
CDF and upper quantiles (``cdf_ms``, ``exact_tail_ms``: closed forms where they exist, so a run's
report imports no scipy.stats), and where one exists the equivalent frozen ``scipy.stats``
distribution (``to_scipy()``), so that :mod:`simulator.analytic` can predict what the engine
should measure.
"""

from __future__ import annotations

import functools
import math
import statistics
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

Z99 = 2.3263478740408408  # standard normal 0.99 quantile

NonNegMs = Annotated[float, Field(ge=0)]
PosMs = Annotated[float, Field(gt=0)]

# A service's latency law is refused when one draw in TAIL_PROBABILITY exceeds MAX_LATENCY_MS:
# such draws overflow, or keep a run's drain going for simulated weeks (weibull shape 1e-5,
# lognormal sigma 1000, an uncapped Cauchy). See model.Service.
TAIL_PROBABILITY = 1e-9
MAX_LATENCY_MS = 86_400_000.0  # one day


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    def tail_ms(self, p: float) -> float:
        """A latency (ms) that a draw exceeds with probability ``p`` (its upper quantile; NaN
        where it cannot be told)."""
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                return float(self.to_scipy().isf(p))
            except Exception:  # scipy raises many kinds for odd parameters
                return math.nan

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` latencies in ms."""
        raise NotImplementedError

    def mean(self) -> float:
        """Analytic mean latency in ms."""
        return float(self.to_scipy().mean())

    def to_scipy(self) -> Any:
        """The equivalent frozen scipy.stats distribution (in ms); ValueError where none exists."""
        raise ValueError(f"no closed form for dist {self.dist!r}")  # type: ignore[attr-defined]

    def cdf_ms(self, t_ms: np.ndarray) -> np.ndarray:
        """``P(latency <= t)`` at each ``t_ms`` (a closed form where one exists, so that a run's
        report need not import scipy.stats; else scipy's; ValueError where neither exists)."""
        return self.to_scipy().cdf(t_ms)

    def exact_tail_ms(self, p: float) -> float:
        """The exact upper ``p`` quantile in ms (``tail_ms`` where that is exact, else
        scipy's); ValueError where none is known."""
        return float(self.to_scipy().isf(p))


_ERF = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF, elementwise (math.erf: exact to double precision)."""
    return 0.5 * (1.0 + _ERF(np.asarray(z, dtype=float) / math.sqrt(2.0)).astype(float))


class Constant(_Dist):
    dist: Literal["constant"]
    ms: NonNegMs

    def sample(self, rng, n):
        return np.full(n, self.ms)

    def mean(self):
        return self.ms

    def tail_ms(self, p):
        return self.ms

    def exact_tail_ms(self, p):
        return self.ms

    def cdf_ms(self, t_ms):
        return (np.asarray(t_ms) >= self.ms).astype(float)


class Exponential(_Dist):
    dist: Literal["exponential"]
    mean_ms: PosMs

    def sample(self, rng, n):
        return rng.exponential(self.mean_ms, n)

    def to_scipy(self):
        from scipy import stats

        return stats.expon(scale=self.mean_ms)

    def mean(self):
        return self.mean_ms

    def tail_ms(self, p):
        return self.mean_ms * math.log(1.0 / p)

    def exact_tail_ms(self, p):
        return self.tail_ms(p)

    def cdf_ms(self, t_ms):
        return -np.expm1(-np.maximum(t_ms, 0.0) / self.mean_ms)


class Lognormal(_Dist):
    """Given by ``p50_ms`` + ``p99_ms``, ``median_ms`` + ``sigma`` or ``mean_ms`` + ``cv``."""

    dist: Literal["lognormal"]
    p50_ms: PosMs | None = None
    p99_ms: PosMs | None = None
    median_ms: PosMs | None = None
    sigma: Annotated[float, Field(gt=0)] | None = None
    mean_ms: PosMs | None = None
    cv: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_parameterisation(self) -> Lognormal:
        given = {
            k
            for k in ("p50_ms", "p99_ms", "median_ms", "sigma", "mean_ms", "cv")
            if getattr(self, k) is not None
        }
        pairs = [{"p50_ms", "p99_ms"}, {"median_ms", "sigma"}, {"mean_ms", "cv"}]
        if given not in pairs:
            names = sorted(given) or ["nothing"]
            raise ValueError(
                "lognormal takes p50_ms + p99_ms, or median_ms + sigma, or mean_ms + cv; "
                f"got {', '.join(names)}"
            )
        if self.p50_ms is not None and self.p99_ms <= self.p50_ms:  # type: ignore[operator]
            raise ValueError(f"p99_ms ({self.p99_ms:g}) must be above p50_ms ({self.p50_ms:g})")
        return self

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """Parameters of the underlying normal (of ln latency in ms)."""
        if self.p50_ms is not None:
            return math.log(self.p50_ms), (math.log(self.p99_ms) - math.log(self.p50_ms)) / Z99
        if self.median_ms is not None:
            return math.log(self.median_ms), self.sigma  # type: ignore[return-value]
        s2 = math.log1p(self.cv**2)  # type: ignore[operator]
        return math.log(self.mean_ms) - s2 / 2, math.sqrt(s2)  # type: ignore[arg-type]

    def sample(self, rng, n):
        mu, sigma = self.mu_sigma
        return rng.lognormal(mu, sigma, n)

    def mean(self):
        mu, sigma = self.mu_sigma
        return math.exp(mu + sigma**2 / 2)

    def tail_ms(self, p):
        mu, sigma = self.mu_sigma
        return math.exp(mu - sigma * statistics.NormalDist().inv_cdf(p))  # exact for tiny p

    def exact_tail_ms(self, p):
        return self.tail_ms(p)

    def cdf_ms(self, t_ms):
        mu, sigma = self.mu_sigma
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(t_ms, 0.0)) - mu) / sigma
        return normal_cdf(z)

    def to_scipy(self):
        from scipy import stats

        mu, sigma = self.mu_sigma
        return stats.lognorm(s=sigma, scale=math.exp(mu))


class Gamma(_Dist):
    dist: Literal["gamma"]
    mean_ms: PosMs
    cv: Annotated[float, Field(gt=0)]

    def sample(self, rng, n):
        shape = 1 / self.cv**2
        return rng.gamma(shape, self.mean_ms / shape, n)

    def to_scipy(self):
        from scipy import stats

        shape = 1 / self.cv**2
        return stats.gamma(a=shape, scale=self.mean_ms / shape)

    def tail_ms(self, p):
        # Wilson-Hilferty: the cube root of a gamma is nearly normal (no scipy import at load)
        k = 1 / self.cv**2
        z = statistics.NormalDist().inv_cdf(1.0 - p)
        return self.mean_ms * max(1 - 1 / (9 * k) + z * math.sqrt(1 / (9 * k)), 0.0) ** 3

    def mean(self):
        return self.mean_ms

    def exact_tail_ms(self, p):
        from scipy.special import gammainccinv  # lighter than scipy.stats

        shape = 1 / self.cv**2
        return float(gammainccinv(shape, p)) * self.mean_ms / shape

    def cdf_ms(self, t_ms):
        from scipy.special import gammainc  # lighter than scipy.stats

        shape = 1 / self.cv**2
        return gammainc(shape, np.maximum(t_ms, 0.0) * shape / self.mean_ms)


class Weibull(_Dist):
    dist: Literal["weibull"]
    shape: Annotated[float, Field(gt=0)]
    scale_ms: PosMs

    def sample(self, rng, n):
        return self.scale_ms * rng.weibull(self.shape, n)

    def mean(self):
        return self.scale_ms * math.gamma(1 + 1 / self.shape)

    def tail_ms(self, p):
        return self.scale_ms * math.log(1.0 / p) ** (1.0 / self.shape)

    def exact_tail_ms(self, p):
        return self.tail_ms(p)

    def cdf_ms(self, t_ms):
        return -np.expm1(-((np.maximum(t_ms, 0.0) / self.scale_ms) ** self.shape))

    def to_scipy(self):
        from scipy import stats

        return stats.weibull_min(c=self.shape, scale=self.scale_ms)


class Pareto(_Dist):
    """Type I Pareto: ``scale_ms`` is the minimum; ``cap_ms`` clips the tail."""

    dist: Literal["pareto"]
    alpha: Annotated[float, Field(gt=0)]
    scale_ms: PosMs
    cap_ms: PosMs | None = None

    @model_validator(mode="after")
    def _cap_above_scale(self) -> Pareto:
        if self.cap_ms is not None and self.cap_ms < self.scale_ms:
            raise ValueError(
                f"cap_ms ({self.cap_ms:g}) must be at least scale_ms ({self.scale_ms:g})"
            )
        return self

    def sample(self, rng, n):
        x = self.scale_ms * (1.0 + rng.pareto(self.alpha, n))
        return x if self.cap_ms is None else np.minimum(x, self.cap_ms)

    def tail_ms(self, p):
        try:
            x = self.scale_ms * p ** (-1.0 / self.alpha)
        except OverflowError:
            x = math.inf
        return x if self.cap_ms is None else min(x, self.cap_ms)

    def exact_tail_ms(self, p):
        return self.tail_ms(p)

    def cdf_ms(self, t_ms):
        t = np.asarray(t_ms, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            below = 1.0 - (self.scale_ms / np.maximum(t, self.scale_ms)) ** self.alpha
        return below if self.cap_ms is None else np.where(t >= self.cap_ms, 1.0, below)

    def mean(self):
        a, m = self.alpha, self.scale_ms
        if self.cap_ms is None:
            return a * m / (a - 1) if a > 1 else math.inf
        c = self.cap_ms  # E[min(X, c)] = ∫_0^c P(X > t) dt
        tail = m * math.log(c / m) if a == 1 else m * (1 - (m / c) ** (a - 1)) / (a - 1)
        return m + tail

    def to_scipy(self):
        if self.cap_ms is not None:
            raise ValueError("no closed form for a capped pareto")
        from scipy import stats

        return stats.pareto(b=self.alpha, scale=self.scale_ms)


class Uniform(_Dist):
    dist: Literal["uniform"]
    min_ms: NonNegMs
    max_ms: NonNegMs

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.max_ms < self.min_ms:
            raise ValueError(f"max_ms ({self.max_ms:g}) must be at least min_ms ({self.min_ms:g})")
        return self

    def sample(self, rng, n):
        return rng.uniform(self.min_ms, self.max_ms, n)

    def mean(self):
        return (self.min_ms + self.max_ms) / 2

    def tail_ms(self, p):
        return self.max_ms

    def exact_tail_ms(self, p):
        return self.max_ms - p * (self.max_ms - self.min_ms)

    def cdf_ms(self, t_ms):
        if self.max_ms == self.min_ms:
            return (np.asarray(t_ms) >= self.min_ms).astype(float)
        return np.clip((np.asarray(t_ms) - self.min_ms) / (self.max_ms - self.min_ms), 0.0, 1.0)

    def to_scipy(self):
        from scipy import stats

        return stats.uniform(loc=self.min_ms, scale=self.max_ms - self.min_ms)


def read_number_file(path: Path, what: str, *, minimum: float = 0.0) -> np.ndarray:
    """Numbers from a CSV with one value a line (blank lines and ``#`` comments skipped).

    Raises ValueError naming the file line of the first bad value. Cached per file version, so
    validating a field and then loading it reads the file once.
    """
    try:
        if path.is_dir():
            raise ValueError(f"{path} is a directory, not a file of numbers")
        if not path.is_file():
            raise ValueError(f"{what} file not found: {path}")
        return _read_numbers(str(path.resolve()), path.stat().st_mtime_ns, what, minimum).copy()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None


@functools.lru_cache(maxsize=32)
def _read_numbers(name: str, _mtime_ns: int, what: str, minimum: float) -> np.ndarray:
    path = Path(name)
    values: list[float] = []
    with path.open("rb") as f:
        for lineno, raw_bytes in enumerate(f, 1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text") from None
            text = raw.split("#", 1)[0].strip().split(",", 1)[0].strip()
            if not text:
                continue
            try:
                v = float(text)
            except ValueError:
                if not values and lineno == 1:  # a header line
                    continue
                shown = text if len(text) <= 40 else text[:37] + "..."
                raise ValueError(f"{path}:{lineno}: not a number: {shown!r}") from None
            if not math.isfinite(v) or v < minimum:
                raise ValueError(
                    f"{path}:{lineno}: {what} must be a finite number >= {minimum:g}, got {text}"
                )
            values.append(v)
    if not values:
        raise ValueError(f"{what} file {path} holds no numbers")
    return np.asarray(values, dtype=float)


def resolve_path(name: str, info: ValidationInfo) -> Path:
    """A scenario-relative path (the loader passes ``base_dir`` in the validation context)."""
    base = Path((info.context or {}).get("base_dir", "."))
    p = Path(name)
    return p if p.is_absolute() else base / p


class Empirical(_Dist):
    """Resamples the latencies (ms) listed in ``file``, one a line."""

    dist: Literal["empirical"]
    file: str
    _values: np.ndarray = PrivateAttr(default_factory=lambda: np.zeros(1))

    @field_validator("file")
    @classmethod
    def _exists(cls, name: str, info: ValidationInfo) -> str:
        read_number_file(resolve_path(name, info), "latency")
        return name

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> Empirical:
        self._values = read_number_file(resolve_path(self.file, info), "latency")
        if self._values.max() > MAX_LATENCY_MS:
            raise ValueError(
                f"{self.file} holds a latency of {self._values.max():.3g} ms, beyond the "
                f"{MAX_LATENCY_MS:,.0f} ms (one day) a run allows"
            )
        return self

    def sample(self, rng, n):
        return rng.choice(self._values, n)

    def mean(self):
        return float(self._values.mean())

    def tail_ms(self, p):
        return float(self._values.max())

    @property
    def values(self) -> np.ndarray:
        """The file's latencies (ms), as read (do not modify)."""
        return self._values


class ScipyDist(_Dist):
    """Any continuous ``scipy.stats`` distribution: ``name``, shape ``params``, ``scale_ms``."""

    dist: Literal["scipy"]
    name: str
    params: dict[str, float] | list[float] = Field(default_factory=dict)
    scale_ms: PosMs = 1.0
    loc_ms: NonNegMs = 0.0

    @model_validator(mode="after")
    def _builds(self) -> ScipyDist:
        from scipy import stats

        family = getattr(stats, self.name, None)
        if not isinstance(family, stats.rv_continuous):
            raise ValueError(f"{self.name!r} is not a continuous scipy.stats distribution")
        try:
            frozen = self.to_scipy()
            ok = np.all(frozen.rvs(size=4, random_state=0) >= 0)
        except Exception as e:  # scipy raises many kinds for bad shape parameters
            raise ValueError(f"scipy.stats.{self.name} rejects params {self.params}: {e}") from None
        if not ok:
            raise ValueError(f"scipy.stats.{self.name} with these params gives negative latencies")
        return self

    def to_scipy(self):
        from scipy import stats

        family = getattr(stats, self.name)
        args, kwargs = (self.params, {}) if isinstance(self.params, list) else ((), self.params)
        return family(*args, **kwargs, loc=self.loc_ms, scale=self.scale_ms)

    def sample(self, rng, n):
        return np.maximum(self.to_scipy().rvs(size=n, random_state=rng), 0.0)

    def mean(self):
        return float(self.to_scipy().mean())


_FLAT = (Constant, Exponential, Lognormal, Gamma, Weibull, Pareto, Uniform, Empirical, ScipyDist)

# A mixture component is a flat distribution mapping plus ``weight``. Each component class is
# bound to a module-level name (ConstantComponent, ...), so pickle finds it: replications
# send the scenario to worker processes.
_COMPONENTS = tuple(
    create_model(
        f"{c.__name__}Component",
        __base__=c,
        __module__=__name__,
        weight=(Annotated[float, Field(gt=0)], ...),
    )
    for c in _FLAT
)
globals().update({c.__name__: c for c in _COMPONENTS})
Component = Annotated[Union[_COMPONENTS], Field(discriminator="dist")]  # type: ignore[valid-type]  # noqa: UP007


class Mixture(_Dist):
    dist: Literal["mixture"]
    components: Annotated[list[Component], Field(min_length=1)]

    @property
    def weights(self) -> np.ndarray:
        w = np.array([c.weight for c in self.components], dtype=float)
        return w / w.sum()

    def sample(self, rng, n):
        which = rng.choice(len(self.components), n, p=self.weights)
        out = np.empty(n)
        for i, comp in enumerate(self.components):
            mask = which == i
            out[mask] = comp.sample(rng, int(mask.sum()))
        return out

    def mean(self):
        return float(sum(w * c.mean() for w, c in zip(self.weights, self.components, strict=True)))

    def tail_ms(self, p):
        # P(X > x) = sum of w_i P(X_i > x) <= p when every P(X_i > x) <= p
        return max(c.tail_ms(p) for c in self.components)


Latency = Annotated[Union[_FLAT + (Mixture,)], Field(discriminator="dist")]  # type: ignore[valid-type]  # noqa: UP007
DIST_NAMES = tuple(c.model_fields["dist"].annotation.__args__[0] for c in _FLAT + (Mixture,))
