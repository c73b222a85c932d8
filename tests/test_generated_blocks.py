"""advlab.generated_blocks: a command's table between two markers, the prose around it kept."""

import pytest

from advlab.generated_blocks import markers, splice, spliced

DOC = "# Title\n\nprose before\n<!-- t -->\nold table\n<!-- /t -->\nprose after\n"


def test_spliced_replaces_only_the_block():
    new = spliced(DOC, "t", "| a |\n|---|\n")
    assert new == "# Title\n\nprose before\n<!-- t -->\n| a |\n|---|\n<!-- /t -->\nprose after\n"
    assert spliced(new, "t", "| a |\n|---|") == new  # idempotent: a check can tell stale blocks


def test_splice_says_whether_the_file_changed(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(DOC)
    assert splice(doc, "t", "new") is True
    assert splice(doc, "t", "new") is False
    assert doc.read_text().endswith("<!-- t -->\nnew\n<!-- /t -->\nprose after\n")


@pytest.mark.parametrize("text", ["no markers at all\n", "<!-- /t -->\nx\n<!-- t -->\n",
                                  "inline <!-- t --> x <!-- /t -->\n"])
def test_missing_markers_say_which_to_add(tmp_path, text):
    doc = tmp_path / "README.md"
    doc.write_text(text)
    with pytest.raises(ValueError, match=f"{doc}.*{markers('t')[0]} ... {markers('t')[1]}"):
        splice(doc, "t", "new")
    assert doc.read_text() == text  # nothing lost
