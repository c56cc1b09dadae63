"""Models: the model card and onnxruntime sessions (``_model``), classification
(``_classify``), embeddings (``_embed``), and bringing your own model: conversion, checks and
quantisation (``_modeltools``). The bundled demo model is :func:`demo_model`.
"""

from ._classify import classify
from ._embed import embed, embedding_layers
from ._model import Model, ModelCard, demo_model, load_model, write_model_card
from ._modeltools import (
    CheckReport,
    ConvertReport,
    QuantizeReport,
    check_model,
    convert_model,
    quantize_model,
)

__all__ = [
    "check_model",
    "CheckReport",
    "classify",
    "convert_model",
    "ConvertReport",
    "demo_model",
    "embed",
    "embedding_layers",
    "load_model",
    "Model",
    "ModelCard",
    "quantize_model",
    "QuantizeReport",
    "write_model_card",
]
