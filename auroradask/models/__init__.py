"""Models: the model card and onnxruntime sessions (``_model``), classification
(``_classify``), embeddings (``_embed``), and bringing your own model: conversion
(``_convert``), checks (``_check``) and quantisation (``_quantize``), which run models on the
same real frames and compare them (``_compare``). The bundled demo model is :func:`demo_model`.
"""

from ._check import CheckReport, check_model
from ._classify import classify
from ._convert import ConvertReport, convert_model
from ._embed import embed, embedding_layers
from ._model import Model, ModelCard, demo_model, load_model, write_model_card
from ._quantize import QuantizeReport, quantize_model

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
