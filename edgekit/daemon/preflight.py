"""What ``edgekit run`` checks about its model before it listens, shared with ``edgekit config check``.

The config file's own values are checked by :mod:`edgekit.daemon.config`. What only the model can
tell comes here, read from the file in Python (no interpreter is built, so it is quick and safe):
the model resolves, takes audio, suits the front end and the device, and its labels fit it and
know every rule's labels. Both commands call :func:`preflight`, so a config that ``run`` refuses
is refused by ``check`` with the very same message; ``run`` exits 78 (EX_CONFIG) for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ConfigError, EdgekitError, LabelsError
from edgekit.daemon.settings import Config


class ModelConfigError(ConfigError):
    """The config's [model] cannot work: no such model, not an audio model, labels that do not fit."""

    def __init__(self, source: str, key: str, why: str):
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {why}")


@dataclass(frozen=True)
class ModelFacts:
    path: Path  # the model file the name resolved to
    kind: str  # "waveform" or "log-mel"
    classes: int
    labels: tuple[str, ...]  # what the detector will see ("class N" where the model has none)
    labels_source: str | None  # "embedded in NAME", a file, or None
    config: Config  # the config with its rule labels checked against ``labels``
    sounds: tuple = ()  # the rules' learned sounds, read and checked against the model

    def describe(self) -> str:
        src = self.labels_source
        where = ("no labels: rules name classes as 'class N'" if src is None else
                 f"labels {src}" if src.startswith("embedded") else f"labels from {src}")
        return f"model {self.path} ({self.kind}, {self.classes} classes; {where})"


def load_sounds_for(source: str, names, model) -> tuple:
    """The config's custom sounds through the one loader (:func:`edgekit.detect.sound_store.load_sounds`),
    a bad one a ConfigError with the same message for ``config check``, ``run`` (exit 78) and a reload."""
    from edgekit.detect.sound_store import load_sounds
    from edgekit.errors import SoundError

    try:
        return load_sounds(names, model)
    except SoundError as exc:
        raise ModelConfigError(source, "rules", str(exc)) from None


def _sound_host(source: str, path: Path, classes: int):
    """What a sound is checked against, read from the model file (no interpreter is built)."""
    from types import SimpleNamespace

    from edgekit.models.embedding import embedding_tensor
    from edgekit.models.tflite import read_graph_file

    try:
        graph = read_graph_file(path)[0]
        dims = graph.tensors[embedding_tensor(graph)].elements
    except EdgekitError as exc:
        raise ModelConfigError(source, "model.model", f"custom sounds cannot run on {path.name}: {exc}") from None
    return SimpleNamespace(path=path, embedding_dims=dims, num_classes=classes)


def preflight(config_path: str, cfg: Config) -> ModelFacts:
    """Everything about ``cfg.model`` (and the files the config names) that would stop ``run``, as a
    :class:`ConfigError`."""
    if cfg.mqtt is not None:  # the TLS files, loaded as run loads them (a garbage CA file passed before)
        from edgekit.actions.mqtt_connect import check_tls
        from edgekit.errors import MqttError

        try:
            check_tls(cfg.mqtt)
        except MqttError as exc:
            raise ConfigError(f"{config_path}: {exc}") from None
    from edgekit.daemon.config import load_config
    from edgekit.models.labels import model_labels, output_classes
    from edgekit.models.model import IMAGE, LOGMEL, edgetpu_twin, input_kind, logmel_quant
    from edgekit.models.paths import resolve_model
    from edgekit.models.runtime import parse_device
    from edgekit.models.tflite import read_graph_file
    from edgekit.params import FeatureParams

    m, source = cfg.model, str(config_path)
    try:
        path = resolve_model(m.model)
        graph, data = read_graph_file(path)
        kind = input_kind(graph, FeatureParams().with_hop(cfg.audio.hop_seconds))
    except EdgekitError as exc:
        raise ModelConfigError(source, "model.model", str(exc)) from None
    if kind == IMAGE:
        shape = "x".join(str(d) for d in graph.input_tensors()[0].shape)
        raise ModelConfigError(source, "model.model", f"{path} is an image model (input {shape}), not an audio "
                                                      "model; use a YAMNet-style model such as yamnet")
    if kind == LOGMEL and m.frontend == "fixed" and logmel_quant(graph) is None:
        raise ModelConfigError(source, "model.frontend", f'"fixed" needs a model with a quantised log-mel input, '
                                                         f'and {path.name} has a float one; use "float"')
    if graph.is_edgetpu and not parse_device(m.device).is_edgetpu and not (m.fallback == "cpu" and edgetpu_twin(path)):
        raise ModelConfigError(source, "model.device", f"{path.name} is compiled for the Edge TPU; set device = "
                                                       '"usb" or "pci", or use the CPU model it was compiled from')
    try:
        names, labels_source = model_labels(path, graph, data, m.labels)
    except LabelsError as exc:
        raise ModelConfigError(source, "model.labels", str(exc)) from None
    classes = output_classes(graph)
    if names is None:
        labels_source, names = None, tuple(f"class {i}" for i in range(classes))  # as the loaded model names them
    checked = load_config(config_path, labels=names)  # rule labels: the same call run makes
    if checked.sounds:  # learned on this model? (an Edge TPU model runs them on its CPU twin)
        body = (edgetpu_twin(path) or path) if graph.is_edgetpu else path
        sounds = load_sounds_for(source, checked.sounds, _sound_host(source, body, classes))
    return ModelFacts(path, kind, classes, names, labels_source, checked, sounds if checked.sounds else ())
