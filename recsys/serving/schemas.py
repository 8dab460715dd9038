"""The pydantic models of the service's requests and responses.

The routes validate requests with them and the OpenAPI schema (/docs, /openapi.json)
documents them; responses themselves are written with orjson (``recsys.serving.responses``)
in the shapes declared here.
"""

from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

#: A raw id: an integer (64-bit, as model files store them) or a string.
Id = Union[Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)], StrictStr]  # noqa: UP007


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    item: Id


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[Pair] = Field(description="(user, item) pairs; unknown ids fall back to biases")


class Prediction(BaseModel):
    user: Id
    item: Id
    prediction: float


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class ItemRating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: Id
    rating: float = Field(allow_inf_nan=False)


class NewUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: list[ItemRating] = Field(description="the new user's ratings (each item once)")
    n: int = Field(10, ge=1, description="how many items (at most the configured max_n)")
    exclude_rated: bool = True
    items: list[Id] | None = Field(None, description="only these items are candidates "
                                   "(unknown ids are ignored unless strict)")
    exclude: list[Id] | None = Field(None, description="these items are never recommended")
    strict: bool = Field(False, description="unknown ids in items are a 404")


class NewRating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    item: Id
    rating: float = Field(allow_inf_nan=False)
    timestamp: Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)] | None = None


class RatingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: list[NewRating] = Field(description="ratings of items the model knows, by known "
                                                 "or new users (at most max_batch)")


class RatingsAccepted(BaseModel):
    accepted: int = Field(description="ratings written to the log and applied")
    seq: list[int] | None = Field(description="first and last sequence number in the log")
    new_users: list[str] = Field(description="users the model did not know until now")


class ScoredItem(BaseModel):
    item: Id
    score: float
    title: str | None = None


class Recommendations(BaseModel):
    user: Id | None = None
    fallback: str | None = Field(None, description="'popular' when the user was unknown")
    items: list[ScoredItem]


class NewUserRecommendations(BaseModel):
    user_bias: float
    used_ratings: int
    unknown_items: list[Id]
    items: list[ScoredItem]


class SimilarItem(BaseModel):
    item: Id
    similarity: float
    title: str | None = None


class SimilarItems(BaseModel):
    item: Id
    items: list[SimilarItem]


class ErrorBody(BaseModel):
    error: str
    detail: str


class Health(BaseModel):
    status: str
    generation: int = Field(description="the model generation this worker serves")
    loaded_at: str
    worker: int = Field(description="the id (pid) of the worker process that answered")
