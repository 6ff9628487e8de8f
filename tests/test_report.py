import html
import html.parser
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import document, files, models, paths, report
from stages.cli import StageError
from stages.params import Experiment


def exp(name, data="translated", model="linear", placement=None):
    return Experiment(name=name, data=data, placement=placement or ("fixed" if data == "centred" else "fresh"),
                      model=model, optimizer="adam", learning_rate=0.002, schedule="cosine", warmup_epochs=0,
                      batch_size=128, epochs=3, max_steps=None, patience=None, target_accuracy=None,
                      max_seconds=None, seed=1, precision="float32", data_parallel=False)


def metric(accuracy, errors=10, params=100):
    return {"test_accuracy": accuracy, "test_accuracy_low": accuracy - 0.004, "test_accuracy_high": accuracy + 0.003,
            "test_loss": 0.3, "errors": errors, "epochs": 3, "steps": 1290,
            "stopped_by": "epochs", "params": params}


ORIGINAL = {"linear_mnist": {"reported": 0.92, "as_printed": "about 92%", "p_value": 0.2, "significant": False},
            "linear_translated": {"reported": None, "as_printed": "not reported"},
            "mlp_translated": {"reported": 0.9538, "as_printed": "95.38%", "p_value": 0.04, "significant": True},
            "cnn_translated": {"reported": 0.9651, "as_printed": "96.51%", "p_value": 1e-9, "significant": True}}


def comparisons(names, p_values=None):
    """What the compare stage writes: every pair tested, p = 0.5 unless `p_values[(a, b)]` says otherwise."""
    p_values = p_values or {}
    pairs = {}
    for i, a in enumerate(names):
        for b in list(names)[i + 1:]:
            p = p_values.get((a, b), p_values.get((b, a), 0.5))
            pairs[f"{a} vs {b}"] = {"p_value": p, "significant": p < 0.05}
    return {"test_digits": 10000, "pairs": pairs,
            "original": {name: test for name, test in ORIGINAL.items() if name in names}}


NOTEBOOK = {"linear_mnist": exp("linear_mnist", "centred"), "linear_translated": exp("linear_translated"),
            "mlp_translated": exp("mlp_translated", model="mlp"), "cnn_translated": exp("cnn_translated", model="cnn")}


# --- words and numbers ---

def test_signed_picks_the_word_from_the_sign_and_prints_rounded_points():
    assert report.signed(0.0123, "gains {}", "loses {}", "same") == "gains 1.23 percentage points"
    assert report.signed(-0.0123, "gains {}", "loses {}", "same") == "loses 1.23 percentage points"
    assert report.signed(0.00004, "gains {}", "loses {}", "same") == "same"  # prints as 0.00: say so


def test_results_table_shows_each_experiment_next_to_the_original():
    metrics = {"linear_mnist": metric(0.9253, params=7850), "linear_translated": metric(0.8811),
               "mlp_translated": metric(0.9601, params=805510), "cnn_translated": metric(0.9688)}
    metrics["cnn_translated"]["stopped_by"] = "patience"
    table = report.results_table(NOTEBOOK, metrics, ORIGINAL)
    rows = {row[0]: row for row in table.rows}
    assert rows["`linear_mnist`"][3:6] == ("92.53%", "92.13–92.83%", "about 92%")
    assert rows["`linear_translated`"][5] == "not reported"
    assert rows["`mlp_translated`"][3:6] == ("96.01%", "95.61–96.31%", "95.38%")
    assert rows["`mlp_translated`"][-1] == "805,510"
    assert rows["`cnn_translated`"][5:7] == ("96.51%", "3 / 1,290 (patience)")
    extra = report.results_table({"cnn_gap": exp("cnn_gap", model="cnn_gap")}, {"cnn_gap": metric(0.99)}, {})
    assert extra.rows[0][5] == "—"  # not an experiment of the notebook
    markdown = document.table(table)
    assert "| ---: |" in markdown and markdown.count("\n") == len(NOTEBOOK) + 1


def test_discussion_numbers_come_from_the_metrics_and_the_wording_follows_the_sign():
    metrics = {"linear_mnist": metric(0.9253), "linear_translated": metric(0.8811),
               "mlp_translated": metric(0.9601), "cnn_translated": metric(0.9688, errors=312)}
    tests = comparisons(NOTEBOOK, {("linear_mnist", "linear_translated"): 0.0001, ("cnn_translated", "mlp_translated"): 0.0772})
    text = " ".join(report.discussion(NOTEBOOK, metrics, tests))
    assert ("`cnn_translated` with 96.88% (96.48–97.18%, 312 test errors); its lead over `mlp_translated` (96.01%) "
            "is within test-set noise (p = 0.077).") in text
    assert "Translation costs the linear model 4.42 percentage points" in text
    assert ("`linear_mnist` scores 92.53% on centred digits, `linear_translated` 88.11% on translated ones; "
            "significant (p < 0.001).") in text
    assert ("the MLP (`mlp_translated`, 96.01%) gains 7.90 percentage points over the linear model "
            "(`linear_translated`, 88.11%); within test-set noise (p = 0.500).") in text
    assert "the CNN (`cnn_translated`, 96.88%) gains 0.87 percentage points over the MLP" in text
    assert ("`cnn_translated` scores 96.88% here against 96.51% in the original: 0.37 percentage points higher, "
            "significant (p < 0.001).") in text
    assert ("`linear_mnist` scores 92.53% here against about 92% in the original: 0.53 percentage points higher, "
            "within test-set noise (p = 0.200).") in text

    # Turn the results around: every comparison must now say the opposite.
    flipped = {"linear_mnist": metric(0.90), "linear_translated": metric(0.91),
               "mlp_translated": metric(0.95), "cnn_translated": metric(0.94)}
    text = " ".join(report.discussion(NOTEBOOK, flipped, comparisons(NOTEBOOK)))
    assert "Translation gains the linear model 1.00 percentage points" in text
    assert "the CNN (`cnn_translated`, 94.00%) loses 1.00 percentage points to the MLP" in text
    assert "`cnn_translated` scores 94.00% here against 96.51% in the original: 2.51 percentage points lower" in text
    assert "`mlp_translated` scores 95.00% here against 95.38% in the original: 0.38 percentage points lower" in text

    level = {name: metric(0.95) for name in NOTEBOOK}
    text = " ".join(report.discussion(NOTEBOOK, level, comparisons(NOTEBOOK)))
    assert "leaves the linear model's accuracy unchanged" in text and "matches the MLP" in text


def test_discussion_compares_only_what_params_holds_and_handles_new_experiments():
    experiments = {"cnn_translated": exp("cnn_translated", model="cnn"),
                   "cnn_gap": exp("cnn_gap", model="cnn_gap"),
                   "cnn_centre": exp("cnn_centre", model="cnn", placement="centre")}
    metrics = {"cnn_translated": metric(0.97), "cnn_gap": metric(0.985), "cnn_centre": metric(0.40)}
    text = " ".join(report.discussion(experiments, metrics, comparisons(experiments)))
    assert "the global-pooling CNN (`cnn_gap`, 98.50%) gains 1.50 percentage points over the CNN" in text
    assert ("Trained only on digits at the canvas centre, the CNN (`cnn_centre`) scores 40.00% on the translated "
            "test set, 57.00 percentage points lower than when trained on translated digits") in text
    assert "Translation" not in text and "MLP" not in text and "mlp" not in text


def seed_runs(mean, sd, runs=3):
    """What the seeds stage writes, in short."""
    return {"runs": runs if sd is not None else 1, "mean": mean, "sd": sd, "min": mean - (sd or 0),
            "max": mean + (sd or 0), "test_sd": 0.002}


def test_seed_table_says_which_noise_is_larger():
    table = report.seed_table({"a": seed_runs(0.95, 0.004), "b": seed_runs(0.99, 0.001), "c": seed_runs(0.9, None)})
    assert table.rows == (("`a`", "3", "95.00%", "94.60–95.40%", "0.40", "0.20", "seed"),
                          ("`b`", "3", "99.00%", "98.90–99.10%", "0.10", "0.20", "test set"),
                          ("`c`", "1", "90.00%", "90.00–90.00%", "—", "0.20", "—"))


def test_seed_noise_bounds_a_difference_of_two_runs_and_names_what_it_assumes():
    study = {"a": seed_runs(0.95, 0.003), "b": seed_runs(0.96, 0.004), "c": seed_runs(0.97, None)}
    # two runs of a and b differ by their seeds alone with sd sqrt(0.3^2 + 0.4^2) = 0.5 points: bound 1.00
    assert report.seed_noise("a", "b", 0.0101, study) == (True, "beyond seed noise (±1.00 points)")
    assert report.seed_noise("a", "b", -0.0099, study) == (False, "within seed noise (±1.00 points)")
    beyond, text = report.seed_noise("c", "a", 0.02, study)  # c has one run: it takes b's 0.4, the largest
    assert beyond and text == "beyond seed noise (±1.00 points), taking `c` to vary like the most variable measured"
    assert report.seed_noise("c", "c", 0.5, {"c": seed_runs(0.9, None)}) == (None, "not measured (one run each)")


def test_claims_table_holds_every_comparison_of_the_discussion_against_both_noises():
    accuracy = {"linear_mnist": 0.9253, "linear_translated": 0.8811, "mlp_translated": 0.9601, "cnn_translated": 0.9688}
    study = {"linear_mnist": seed_runs(0.925, 0.002), "linear_translated": seed_runs(0.88, 0.002),
             "mlp_translated": seed_runs(0.96, 0.003), "cnn_translated": seed_runs(0.97, None)}
    tests = comparisons(NOTEBOOK, {("linear_mnist", "linear_translated"): 1e-9, ("mlp_translated", "linear_translated"): 1e-9,
                                   ("cnn_translated", "mlp_translated"): 0.01})
    rows = {row[0]: row for row in report.claims_table(NOTEBOOK, accuracy, tests, study).rows}
    assert list(rows) == ["`linear_translated` − `linear_mnist`", "`mlp_translated` − `linear_translated`",
                          "`cnn_translated` − `mlp_translated`"]
    assert rows["`linear_translated` − `linear_mnist`"][1:] == (
        "-4.42", "significant (p < 0.001)", "beyond seed noise (±0.57 points)", "yes")
    cnn = rows["`cnn_translated` − `mlp_translated`"]  # 0.87 points against 2 * sqrt(0.3^2 + 0.3^2) = 0.85
    assert cnn[2:] == ("significant (p = 0.010)",
                       "beyond seed noise (±0.85 points), taking `cnn_translated` to vary like the most variable measured",
                       "yes")
    study["mlp_translated"] = seed_runs(0.96, 0.01)  # a noisier MLP: the same 0.87 points no longer stand out
    rows = {row[0]: row for row in report.claims_table(NOTEBOOK, accuracy, tests, study).rows}
    assert rows["`cnn_translated` − `mlp_translated`"][4] == "no"


def test_mistakes_count_from_the_predictions_and_ties_go_to_the_lower_digit():
    actual = np.array([8, 8, 8, 1, 2, 3, 5])
    predicted = np.array([3, 3, 8, 7, 2, 3, 4])
    assert report.mistakes(actual, predicted) == {
        "wrong": 4, "total": 7, "most_frequent": {"digit": "an 8", "read_as": "a 3", "times": 2}}
    assert report.mistakes(actual[3:], predicted[3:])["most_frequent"] == {"digit": "a 1", "read_as": "a 7", "times": 1}
    assert report.mistakes(actual, actual) == {"wrong": 0, "total": 7, "most_frequent": None}


def test_layer_table_lists_every_layer_with_its_weights_and_sums_to_the_model():
    model = models.build("cnn_gap", (28, 28, 1))
    table = report.layer_table(model)
    rows = {row[0]: row for row in table.rows}
    assert rows["`conv`"][1:] == ("Conv2D", "28×28×32", "kernel 5×5×1×32, bias 32", "832")
    assert rows["total"][-1] == f"{model.count_params():,}"
    assert sum(int(row[-1].replace(",", "")) for row in table.rows[:-1]) == model.count_params()


# --- rendering: whatever a name holds, it shows as written and adds no markup ---

HOSTILE = "<b>x</b> a`b*c_[d](e) #1 & |"


def test_code_spans_and_escaped_text_show_any_name_as_written():
    for name in (HOSTILE, "`x", "a``b", " padded "):
        inline = document.PARSER.parseInline(f"{document.code(name)} and {document.md(name)}")[0].children
        assert inline[0].type == "code_inline" and inline[0].content == name
        assert "".join(token.content for token in inline[1:]) == f" and {name}"
    assert document.code("a\nb") == "`a b`"  # a value never starts a line of its own


def test_tables_escape_pipes_even_in_code_spans():
    table = document.Table(("name", "n"), ((document.code("a|b"), "1|2"),), (False, True))
    page = document.to_html(f"# T\n\n{document.table(table)}\n", Path("."))
    assert "<td><code>a|b</code></td>" in page and '<td style="text-align:right">1|2</td>' in page


def test_the_page_is_the_markdown_escaped_self_contained_and_titled_by_its_first_heading(tmp_path):
    png = tmp_path / "figures" / "x.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG fake")
    markdown = ("# Title `x`\n\na <b> & `code_name`\n\n- one\n- two\n\n| name | n |\n| --- | ---: |\n| `a` | 1 |\n\n"
                "![alt](figures/x.png)\n\ncaption\n")
    page = document.to_html(markdown, tmp_path)
    assert "<p>a &lt;b&gt; &amp; <code>code_name</code></p>" in page
    assert '<td style="text-align:right">1</td>' in page and "<title>Title x</title>" in page
    assert '<img src="data:image/png;base64,iVBORyBmYWtl" alt="alt">' in page
    check_balanced(page)


def test_a_hostile_experiment_name_shows_as_written_in_headings_tables_sentences_and_image_alts(tmp_path):
    name = "<b>x</b> a`b*c_[d](e)"
    experiments = {name: exp(name, "centred"), "lin_t": exp("lin_t")}
    metrics = {name: metric(0.9), "lin_t": metric(0.8)}
    metrics[name]["stopped_by"] = name
    png = tmp_path / "figures" / "f`*_[z](w) <i>.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG fake")
    figure = png.relative_to(tmp_path)
    model = models.build("linear", (28, 28, 1))
    section = {"exp": experiments[name], "metrics": metrics[name], "model_name": "linear model",
               "data_label": "centred", "optimizer": "Adam", "parameters": report.parameters_sentence(name, model),
               "layers": report.layer_table(model), "weights": figure, "conv": None, "curves": figure,
               "confusion": figure, "errors": figure, "mistakes": report.mistakes(np.arange(3), np.arange(3)),
               "errors_shown": 0, "least_confidence": None}
    markdown = document.render(
        "report.md.j2", results=report.results_table(experiments, metrics, {}), digit_size=28, test_digits=10000,
        centred={"figure": figure, "height": 28, "width": 28, "max_offset": 0},
        translated={"figure": figure, "height": 32, "width": 32, "max_offset": 4},
        experiments={"centred": [section], "translated": []},
        discussion=report.discussion(experiments, metrics, comparisons(experiments)),
        seeds=report.seed_table({name: seed_runs(0.8, None) for name in experiments}),
        claims=report.claims_table(experiments, {name: m["test_accuracy"] for name, m in metrics.items()},
                                   comparisons(experiments), {name: seed_runs(0.8, None) for name in experiments}),
        invariance=None)
    page = document.to_html(markdown, tmp_path)

    # In the Markdown: a code span fenced past the name's backtick, or every special character escaped.
    assert "### ``<b>x</b> a`b*c_[d](e)``: linear model" in markdown
    alt = r"Weight maps of \<b\>x\</b\> a\`b\*c\_\[d\](e)"
    assert f"![{alt}](figures/f%60%2A_%5Bz%5D%28w%29%20%3Ci%3E.png)" in markdown
    assert "<b>" not in page and "<i>" not in page
    shown = html.escape(name)
    assert f"<h3><code>{shown}</code>: linear model</h3>" in page
    assert f"<td><code>{shown}</code></td>" in page  # the results table
    assert f"Translation costs the linear model 10.00 percentage points: <code>{shown}</code> scores" in page
    assert f"its lead over <code>lin_t</code> (80.00%) is within test-set noise" in page
    assert f"stopped by <code>{shown}</code>." in page
    for alt in (f"Weight maps of {shown}", f"Training curves of {shown}", f"Confusion matrix of {shown}"):
        assert f'alt="{alt}"' in page
    assert page.count('src="data:image/png;base64,') == markdown.count("![") == 6  # every odd link resolved
    assert "The model made no mistake on the test set." in page
    check_balanced(page)


def grid_result(grid, worse=0, better=0):
    """What the invariance stage writes, with made-up counts of offsets beyond noise and a sampling range."""
    grid = np.asarray(grid, dtype=float)
    last = len(grid) - 1
    centre = grid[last // 2, last // 2]
    return {"mean": grid.mean(), "min": grid.min(), "centre": centre,
            "worst_corner": min(grid[0, 0], grid[0, last], grid[last, 0], grid[last, last]),
            "centre_low": centre - 0.02, "centre_high": min(1.0, centre + 0.01), "offsets_worse": worse,
            "offsets_better": better, "measured_range": float(np.ptp(grid)), "sampling_range": 0.02,
            "sampling_range_95": 0.03, "test_digits": 100, "canvas": 30, "grid": grid.tolist()}


def test_invariance_findings_say_which_model_loses_how_much_away_from_its_training_position():
    experiments = {"cnn_t": exp("cnn_t", model="cnn"), "cnn_c": exp("cnn_c", model="cnn", placement="centre"),
                   "gap_c": exp("gap_c", model="cnn_gap", placement="centre")}
    peaked = np.full((3, 3), 0.5)
    peaked[1, 1] = 0.99
    results = {"cnn_t": grid_result(np.full((3, 3), 0.98) + np.eye(3) / 100), "cnn_c": grid_result(peaked, worse=8),
               "gap_c": grid_result(np.full((3, 3), 0.97))}
    text = " ".join(report.invariance_findings(experiments, results))
    assert "Not by its architecture alone: trained at one position, the original CNN loses 49.00 percentage points" in text
    assert "varies by 1.00 points across the offsets, where sampling alone gives up to 3.00" in text
    assert "comes mostly from the training data" in text
    assert ("(mean 98.33%): a range of 1.00 points against 2.00 expected from sampling alone (95th percentile 3.00); "
            "0 of its 8 other offsets score lower than the centre beyond sampling noise and 0 higher") in text
    assert "loses 49.00 percentage points away from where it was trained (mean over all offsets 55.44%); 8 of its" in text
    assert "global-pooling CNN (`gap_c`) scores 97.00% with the digit at the centre and 97.00% in the worst corner: it loses nothing" in text
    assert "`gap_c` (global-pooling CNN) keeps most of its accuracy away from the centre (0.00 points lost" in text
    assert "`cnn_c` (CNN) the least (49.00 points)" in text
    table = report.invariance_table(experiments, results)
    assert table.rows[1] == ("`cnn_c`", "CNN", "trained at the centre", "55.44%", "50.00%", "99.00% (94.55–99.82%)",
                             "50.00% (40.38–59.62%)", "8 / 0", "49.00 / 3.00")
    grids = report.invariance_grids(experiments, results)
    assert list(grids) == ["trained on translated digits", "trained at the centre"]
    assert list(grids["trained at the centre"]) == ["CNN", "global-pooling CNN"]


# --- the whole stage on a tiny project ---

def outputs():
    return {p: p.read_bytes() for p in [paths.REPORT_MD, paths.REPORT_HTML, *sorted(paths.FIGURES.glob("*.png"))]}


@pytest.fixture
def reported(project_copy, monkeypatch):
    """A copy of the small project (tests/conftest.py), in the cwd, after its `dvc repro` ran the report."""
    monkeypatch.chdir(project_copy)
    return yaml.safe_load(paths.PARAMS.read_text())


def test_report_stage_writes_every_figure_it_links_and_embeds_them_all(reported):
    markdown = paths.REPORT_MD.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    per_experiment = [f"{kind}_{name}.png" for name in reported["experiments"] for kind in ("curves", "confusion", "errors")]
    assert {p.split("/")[-1] for p in linked} == {
        "examples_mnist.png", "examples_translated.png", "weights_linear_mnist.png", "invariance_maps.png",
        "invariance_distance.png", *per_experiment,
        *(f"{kind}_{name}.png" for name in ("cnn_centre", "cnn_gap_translated") for kind in ("cnn_kernels", "cnn_feature_maps"))}
    for link in linked:
        png = paths.REPORT_MD.parent / link
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size < 400_000, link
    # in the notebook's order: centred digits and their model, then translated digits
    assert [link.split("/")[-1] for link in linked][:2] == ["examples_mnist.png", "weights_linear_mnist.png"]

    page = paths.REPORT_HTML.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(linked)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page) and "url(" not in page
    assert "@import" not in page and "<script" not in page
    check_balanced(page)

    # the numbers in the text are the metrics' and the predictions' numbers
    text = " ".join(markdown.split())  # the template wraps its prose where it likes
    for name in reported["experiments"]:
        metrics = files.read_json(paths.metrics(name))
        assert f"{metrics['test_accuracy']:.2%}" in text and f"{metrics['params']:,}" in text
        rows = np.loadtxt(paths.predictions(name), delimiter=",", skiprows=1, ndmin=2)
        wrong = int(np.sum(rows[:, 1] != rows[:, 2]))
        assert f"{wrong:,} of {len(rows):,} test images are off the diagonal." in text
    # the speed measurements have their own page
    assert "## Speed" in markdown and "[speed.md](speed.md)" in markdown and "reports/benchmarks" not in markdown


def test_report_stage_is_deterministic(reported):
    first = outputs()
    report.main()
    second = outputs()
    assert list(first) == list(second)
    for path in first:
        assert first[path] == second[path], path


def test_report_stage_names_missing_inputs(reported):
    paths.predictions("cnn_centre").unlink()
    with pytest.raises(StageError, match="reports/predictions/cnn_centre.csv is missing") as error:
        report.main()
    assert "\n" not in str(error.value)


def check_balanced(page: str) -> None:
    """Every element the page opens is closed, in order: browsers would forgive it, readers of the source not."""
    void = {"meta", "img", "br", "hr", "link", "input"}
    stack = []

    class Checker(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in void:
                stack.append(tag)

        def handle_endtag(self, tag):
            assert stack and stack.pop() == tag, tag

    Checker().feed(page)
    assert stack == []
