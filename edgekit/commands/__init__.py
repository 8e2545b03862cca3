"""One module per ``edgekit`` subcommand: HELP, add_arguments(parser), run(args) -> int."""

LABELS_HELP = ("class map CSV or labels .txt (default: the model's own, one beside it, or for a model "
               "without metadata with 521 or 1001 outputs yamnet_class_map.csv or imagenet_labels.txt "
               "from the model directories)")


def existing_file(text: str):
    """An argparse type: a file that is there, or argparse's usage error (exit 2), as for any option."""
    import argparse
    from pathlib import Path

    p = Path(text).expanduser()
    if not p.is_file():
        where = "" if p.is_absolute() else f" (looked for {p.absolute()})"
        raise argparse.ArgumentTypeError(f"no such file: {text}{where}")
    return p


def add_labels_argument(p) -> None:
    p.add_argument("--labels", metavar="FILE", type=existing_file, help=LABELS_HELP)


def add_model_arguments(p, model_help: str = "a .tflite path or a model name (e.g. yamnet)") -> None:
    """MODEL and --labels, the same in every command that reads one model."""
    p.add_argument("model", help=model_help)
    add_labels_argument(p)
