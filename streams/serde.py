"""faust codecs that carry contract models across topics (never loose dicts).

Each codec decodes wire bytes into a validated, frozen contract model and encodes a model back
to its canonical JSON bytes (``streams.schema.encode``). Registered once under ``<topic name>``.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from streams.schema import ContractModel, decode, encode
from streams.topics import ALL, TopicSpec


class ContractCodec(codecs.Codec):
    """Codec for one contract model (``model=`` keyword, kept by faust's clone())."""

    def __init__(self, model: type[ContractModel], **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        self.model = model

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise TypeError(f"expected {self.model.__name__}, got {type(obj).__name__}")
        return encode(obj)

    def _loads(self, s: bytes) -> Any:
        return decode(self.model, s)


def codec_name(spec: TopicSpec) -> str:
    return f"newsflow:{spec.name}"


def register_all() -> None:
    """Register one codec per contract topic; idempotent."""
    for spec in ALL:
        if spec.value_model is not None:
            codecs.register(codec_name(spec), ContractCodec(model=spec.value_model))
