"""The scikit-learn parameter protocol shared by every estimator: get_params, set_params,
and a repr that shows them."""

from __future__ import annotations


class Params:
    """Estimators list their hyperparameters in ``_PARAMS``, stored verbatim by __init__."""

    _PARAMS: tuple = ()

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"unknown parameter {name!r}; expected one of {self._PARAMS}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
