import html
import html.parser
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import document, files, findings, models, paths, report
from stages.cli import StageError
from tests.test_findings import comparisons, exp, metric, seed_runs

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
               "data_label": "centred", "item": "digit", "optimizer": "Adam",
               "parameters": findings.parameters_sentence(name, model),
               "layers": findings.layer_table(model), "weights": figure, "conv": None, "curves": figure,
               "confusion": figure, "errors": figure, "mistakes": findings.mistakes(np.arange(3), np.arange(3)),
               "errors_shown": 0, "least_confidence": None}
    data = {"name": "mnist", "label": "MNIST", "item": "digit", "digit_size": 28, "test_images": 10000,
            "centred": {"figure": figure, "height": 28, "width": 28, "max_offset": 0},
            "translated": {"figure": figure, "height": 32, "width": 32, "max_offset": 4},
            "experiments": {"centred": [section], "translated": []},
            "discussion": findings.discussion(experiments, metrics, comparisons(experiments)),
            "claims": findings.claims_table(experiments, {name: m["test_accuracy"] for name, m in metrics.items()},
                                            comparisons(experiments),
                                            {name: seed_runs(0.8, None) for name in experiments}),
            "invariance": None}
    markdown = document.render(
        "report.md.j2", results=findings.results_table(experiments, metrics, {}), pairs_tested=1, original_tested=0,
        datasets=[data], seeds=findings.seed_table({name: seed_runs(0.8, None) for name in experiments}), across=None,
        benchmarks=[], published_tested=0)
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
    assert "its lead over <code>lin_t</code> (80.00%) is within test-set noise" in page
    assert f"stopped by <code>{shown}</code>." in page
    for alt in (f"Weight maps of {shown}", f"Training curves of {shown}", f"Confusion matrix of {shown}"):
        assert f'alt="{alt}"' in page
    assert page.count('src="data:image/png;base64,') == markdown.count("![") == 6  # every odd link resolved
    assert "The model made no mistake on the test set." in page
    check_balanced(page)


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
    own_part = [name for name, exp in reported["experiments"].items() if exp["data"] in ("centred", "translated")]
    per_experiment = [f"{kind}_{name}.png" for name in own_part for kind in ("curves", "confusion", "errors")]
    per_protocol = ["examples_translated60_mnist.png", "examples_cluttered60_mnist.png"]
    per_dataset = [f"{kind}_{dataset}.png" for dataset in reported["datasets"]
                   for kind in ("examples", "examples_translated", "invariance_maps", "invariance_distance",
                                "invariance_consistency")]
    assert {p.split("/")[-1] for p in linked} == {
        "weights_linear_mnist.png", *per_dataset, *per_experiment, *per_protocol,
        *(f"{kind}_{name}.png" for name in ("cnn_centre", "cnn_gap_translated", "cnn_bn_translated",
                                            "cnn_invariant_centre", "fashion_cnn_gap_translated")
          for kind in ("cnn_kernels", "cnn_feature_maps"))}
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
        if name not in own_part:  # a benchmark protocol's: in the published benchmarks' table, as an error
            assert f"`{name}`" in markdown.partition("## Published benchmarks")[2]
            assert f"{(1 - metrics['test_accuracy']) * 100:.2f}%" in text
            continue
        rows = np.loadtxt(paths.predictions(name), delimiter=",", skiprows=1, ndmin=2)
        wrong = int(np.sum(rows[:, 1] != rows[:, 2]))
        assert f"{wrong:,} of {len(rows):,} test images are off the diagonal." in text
    # a part per dataset, each in its own words, and the datasets side by side
    for heading in ("## MNIST: translated digits", "## Fashion-MNIST: translated garments",
                    "## Fashion-MNIST: is the CNN translation invariant?", "## Across datasets"):
        assert heading in markdown
    assert "rank 1" in markdown and "garments" not in markdown.partition("## Fashion-MNIST")[0]
    # each benchmark protocol beside the papers measured on it, and only those
    benchmarks = markdown.partition("## Published benchmarks")[2].partition("## How much of it is noise")[0]
    for heading in ("### MNIST on a 60×60 canvas (`translated60`)", "### MNIST on a 60×60 canvas, cluttered "
                    "(`cluttered60`)"):
        assert heading in benchmarks
    plain, cluttered = benchmarks.split("### MNIST on a 60×60 canvas, cluttered")
    assert "RAM, 8 glimpses | Mnih et al. 2014 (RAM), Table 1 | 1.20%" in plain and "ST-CNN" not in plain
    assert "ST-CNN" in cluttered and "4.04%" in cluttered and "1.20%" not in cluttered
    assert "The best model here under 250,000 parameters, `cnn_bn_cluttered60`" in " ".join(cluttered.split())
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
