"""Every path the benchmarks pipeline writes, defined once (benchmarks/dvc.yaml spells the same ones)."""

from pathlib import Path

MEASURED = Path("reports/benchmarks")
CNN_SPEED = MEASURED / "cnn_speed.json"
CNN_RECIPE = MEASURED / "cnn_recipe.json"
CNN_LEVERS = MEASURED / "cnn_levers.json"
PIPELINE_TIME = MEASURED / "pipeline_time.json"

SPEED_MD = Path("reports/speed.md")
SPEED_HTML = Path("reports/speed.html")
TIME_TO_ACCURACY = MEASURED / "time_to_accuracy.png"
RECIPE_ACCURACY = MEASURED / "recipe_accuracy.png"
