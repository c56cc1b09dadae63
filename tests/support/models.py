"""The benchmark's models: the bundled demo model and a ResNet-50-sized CNN with random weights."""

from __future__ import annotations

import numpy as np

import auroradask


def build_resnet50(path: str, classes: int = 4, seed: int = 0) -> str:
    """Write a ResNet-50-shaped ONNX graph (bottleneck stages 3-4-6-3, ~24M weights, ~4 GFLOP a
    224×224 frame) with random weights and a model card for the themis-pa preset."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def conv(x, c_in, c_out, k, stride=1, relu=True):
        w = name("w")
        std = np.sqrt(1.0 / (c_in * k * k))
        weights.append(
            numpy_helper.from_array(
                (rng.standard_normal((c_out, c_in, k, k)) * std).astype(np.float32), w
            )
        )
        b = name("b")
        weights.append(numpy_helper.from_array(np.zeros(c_out, np.float32), b))
        y = name("conv")
        nodes.append(
            helper.make_node(
                "Conv",
                [x, w, b],
                [y],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        if not relu:
            return y
        z = name("relu")
        nodes.append(helper.make_node("Relu", [y], [z]))
        return z

    x = name("nchw")
    nodes.append(helper.make_node("Transpose", ["image"], [x], perm=[0, 3, 1, 2]))
    scale = name("scale")
    weights.append(numpy_helper.from_array(np.array(1 / 255, np.float32), scale))
    x0 = name("scaled")
    nodes.append(helper.make_node("Mul", [x, scale], [x0]))
    x = conv(x0, 3, 64, 7, 2)
    pooled = name("pool")
    nodes.append(
        helper.make_node(
            "MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
        )
    )
    x, c_in = pooled, 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = conv(x, c_in, width, 1)
            y = conv(y, width, width, 3, s)
            y = conv(y, width, width * 4, 1, relu=False)
            shortcut = conv(x, c_in, width * 4, 1, s, relu=False) if i == 0 else x
            added, out = name("add"), name("relu")
            nodes += [
                helper.make_node("Add", [y, shortcut], [added]),
                helper.make_node("Relu", [added], [out]),
            ]
            x, c_in = out, width * 4
    gap, flat = name("gap"), name("flat")
    nodes += [
        helper.make_node("GlobalAveragePool", [x], [gap]),
        helper.make_node("Flatten", [gap], [flat]),
    ]
    fc_w, fc_b, logits = name("fcw"), name("fcb"), name("logits")
    weights.append(
        numpy_helper.from_array(
            (rng.standard_normal((2048, classes)) * 0.01).astype(np.float32), fc_w
        )
    )
    weights.append(numpy_helper.from_array(np.zeros(classes, np.float32), fc_b))
    nodes.append(helper.make_node("Gemm", [flat, fc_w, fc_b], [logits]))
    nodes.append(helper.make_node("Softmax", [logits], ["probability"], axis=1))
    graph = helper.make_graph(
        nodes,
        "resnet50_random",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", classes])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, path)
    auroradask.write_model_card(
        path,
        auroradask.ModelCard(
            classes=["bad_viewing", "no_aurora", "other_aurora", "pulsating"],
            preset="themis-pa",
            outputs="probabilities",
            description="ResNet-50-sized CNN with random weights, for benchmarks only.",
        ),
    )
    return path
