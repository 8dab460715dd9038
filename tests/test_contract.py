"""Every model passes the estimator contract (``recsys.testing.contract``)."""

import pytest

from recsys.data.synth import SynthSpec, generate
from recsys.models.baselines import Biases, GlobalMean
from recsys.models.funksvd import FunkSVD
from recsys.models.hybrid import HybridMF
from recsys.models.ranking import RankingMF
from recsys.models.svdpp import SVDpp
from recsys.testing.contract import EstimatorContract

FAST = dict(n_factors=4, n_epochs=6, lr=0.01, reg=0.05, init_std=0.1, seed=3)


class TestFunkSVDBlockedSGD(EstimatorContract):
    def make(self, **params):
        return FunkSVD(**{**FAST, **params})


class TestFunkSVDOneFeatureAtATime(EstimatorContract):
    def make(self, **params):
        return FunkSVD(**{**FAST, "method": "funk", "n_epochs": 3, "lr": 0.005, **params})


class TestFunkSVDFullBatchGradientDescent(EstimatorContract):
    def make(self, **params):
        return FunkSVD(**{**FAST, "method": "gd", "lr": 0.002, **params})


class TestFunkSVDWithAutoReg(EstimatorContract):
    @pytest.fixture(scope="class")
    @staticmethod
    def ratings():  # enough ratings for the search to run
        ratings, _ = generate(SynthSpec(n_users=100, n_items=60, n_ratings=2_500, rank=3,
                                        noise=0.3, seed=12))
        return ratings

    def make(self, **params):
        return FunkSVD(**{**FAST, "reg": "auto", **params})

    def test_the_search_ran(self, fitted):
        assert len(fitted.reg_trials_) >= 3


class TestSVDpp(EstimatorContract):
    def make(self, **params):
        return SVDpp(**{**FAST, **params})


class TestRankingMF(EstimatorContract):
    predicts_ratings = False

    def make(self, **params):
        return RankingMF(**{"n_factors": 4, "n_epochs": 4, "seed": 3, **params})


class TestRankingMFOnCounts(EstimatorContract):
    predicts_ratings = False

    def make(self, **params):
        return RankingMF(**{"n_factors": 4, "n_epochs": 4, "threshold": None, "seed": 3,
                            **params})


class TestHybridMF(EstimatorContract):
    def make(self, **params):
        return HybridMF(**{"n_factors": 4, "ranking_factors": 3, "reg": 0.05, "seed": 3,
                           **params})


class TestBiasesDamped(EstimatorContract):
    has_factors = False
    threaded = False

    def make(self, **params):
        return Biases(**params)


class TestBiasesSGD(EstimatorContract):
    has_factors = False
    threaded = False

    def make(self, **params):
        return Biases(method="sgd", n_epochs=5, **params)


class TestGlobalMean(EstimatorContract):
    has_factors = False
    threaded = False

    def make(self, **params):
        return GlobalMean(**params)
