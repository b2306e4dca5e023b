"""Check the library's ATT&CK, D3FEND and CCSS identifiers against the pinned releases, and pin their names.

Every identifier the library cites (custodysim/scenario/library.py) must exist in the release named in
``library.RELEASES``, not be revoked or deprecated there, and carry that release's name. This script reads the
releases themselves; ``scripts/identifiers.json`` is what it extracted from them (every live identifier with its
name), so that ``tests/test_library.py`` can check the library offline.

Get the releases (any one is enough to check that catalogue)::

    git clone https://github.com/mitre/cti && git -C cti checkout 421deacb77191b38bdd1bf63268954e93da91365
        # ATT&CK v18.1 Enterprise; or the single bundle enterprise-attack/enterprise-attack-18.1.json of
        # https://github.com/mitre-attack/attack-stix-data at tag v18.1
    curl -O https://raw.githubusercontent.com/d3fend/d3fend-ontology/1.2.0/src/ontology/d3fend-protege.ttl
    git clone https://github.com/CryptoConsortium/CCSS && git -C CCSS checkout c491c9861c62a554d3186db081393499368f29c7

Then::

    python scripts/identifiers.py --attack cti/enterprise-attack --d3fend d3fend-protege.ttl --ccss CCSS
    python scripts/identifiers.py --attack ... --d3fend ... --ccss ... --write   # re-pin identifiers.json

It prints what it checked and every problem, and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from custodysim.scenario import library

PINNED = Path(__file__).with_name("identifiers.json")
SOURCES = {
    "attack": "https://github.com/mitre/cti at commit 421deacb77191b38bdd1bf63268954e93da91365 ('ATT&CK v18.1 "
              "Enterprise', 13 Nov 2025), enterprise-attack/attack-pattern (the release is also published as "
              "enterprise-attack-18.1.json of https://github.com/mitre-attack/attack-stix-data, tag v18.1)",
    "d3fend": "https://github.com/d3fend/d3fend-ontology at tag 1.2.0 (commit "
              "f767485ced18597f254b6bbaadc751852a3a3571, 2 Aug 2025), src/ontology/d3fend-protege.ttl",
    "ccss": "https://github.com/CryptoConsortium/CCSS at commit c491c9861c62a554d3186db081393499368f29c7 (10 Oct 2021, "
            "the last one with the standard before the repository was deprecated), _data/aspects/*.yml",
}
WELL_FORMED: dict[library.Scheme, re.Pattern[str]] = {
    "attack": re.compile(r"T\d{4}(\.\d{3})?"),
    "d3fend": re.compile(r"D3-[A-Z0-9]+"),
    "ccss": re.compile(r"\d\.\d{1,2}\.\d{1,2}"),
}
"""How each catalogue writes an identifier the library may cite (a CCSS requirement is a component, 1.4.6)."""


def _stix_objects(path: Path) -> Iterator[dict[str, Any]]:
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        yield from doc.get("objects", [doc]) if doc.get("type") == "bundle" else [doc]


def attack_names(path: Path) -> dict[str, str]:
    """Return every live ATT&CK technique of a STIX bundle (or a folder of them, as in mitre/cti): id to name."""
    names: dict[str, str] = {}
    for o in _stix_objects(path):
        if o.get("type") != "attack-pattern" or o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        for ref in o.get("external_references", []):
            if ref.get("source_name") == "mitre-attack":
                names[ref["external_id"]] = o["name"]
    return names


def d3fend_names(path: Path) -> dict[str, str]:
    """Return every live D3FEND identifier of the ontology's Turtle file: id (``D3-MFA``) to label."""
    names = {}
    for block in re.split(r"\n(?=:\S+ )", path.read_text(encoding="utf-8")):  # one block per subject
        found = re.search(r':d3fend-id "([^"]+)"', block)
        label = re.search(r'rdfs:label "([^"]+)"', block)
        if found and label and "owl:deprecated true" not in block:
            names[found.group(1)] = label.group(1)
    return names


def ccss_names(path: Path) -> dict[str, str]:
    """Return every CCSS aspect (``1.04``) and requirement component (``1.4.6``) of the standard's YAML: id to title."""
    aspects = path / "_data" / "aspects" if (path / "_data").is_dir() else path
    names = {}
    for f in sorted(aspects.glob("*.yml")):
        text = f.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        aspect = re.search(r"^id:\s*(\S+)", text, re.M)  # as written: YAML would read 1.04 as a number
        if aspect:
            names[aspect.group(1)] = doc["title"]
        for c in doc.get("components") or []:
            names[str(c["id"])] = c["title_short"]
    return names


READERS: dict[library.Scheme, Callable[[Path], dict[str, str]]] = {
    "attack": attack_names, "d3fend": d3fend_names, "ccss": ccss_names}


def problems(known: dict[library.Scheme, dict[str, str]]) -> list[str]:
    """Return what is wrong with the library's identifiers, given each catalogue's live ids and names.

    A catalogue missing from ``known`` is not checked.
    """
    found = []
    for e in library.ENTRIES:
        for i in e.identifiers:
            if not WELL_FORMED[i.scheme].fullmatch(i.id):
                found.append(f"{e.name}: {i.id!r} is not how {library.CATALOGUE_TITLES[i.scheme]} writes an id")
            elif i.scheme not in known:
                continue
            elif i.id not in known[i.scheme]:
                found.append(f"{e.name}: {i.id} is not a live identifier of {library.RELEASES[i.scheme]}")
            elif known[i.scheme][i.id] != i.name:
                found.append(f"{e.name}: {i.id} is {known[i.scheme][i.id]!r} in {library.RELEASES[i.scheme]}, "
                             f"not {i.name!r}")
    return found


def pinned(path: Path = PINNED) -> dict[library.Scheme, dict[str, str]]:
    """Return the pinned ids and names of each catalogue (what :func:`main` wrote with ``--write``)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {scheme: doc[scheme] for scheme in READERS}


def main(argv: list[str] | None = None) -> int:
    """Check the library against the releases given; with --write, pin their ids and names."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for scheme in READERS:
        parser.add_argument(f"--{scheme}", type=Path, help=f"the release of {library.RELEASES[scheme]}")
    parser.add_argument("--write", action="store_true", help=f"rewrite {PINNED.name} from the releases given")
    args = parser.parse_args(argv)
    known = {s: READERS[s](getattr(args, s)) for s in READERS if getattr(args, s) is not None}
    if not known:
        parser.error("give at least one release (--attack, --d3fend, --ccss)")
    if args.write and set(known) != set(READERS):
        parser.error("--write needs every release (--attack, --d3fend, --ccss)")
    for scheme, names in known.items():
        if not names:
            print(f"{scheme}: no identifiers found in {getattr(args, scheme)}", file=sys.stderr)
            return 1
        cited = sorted({i.id for e in library.ENTRIES for i in e.cited(scheme)})
        print(f"{library.RELEASES[scheme]}: {len(names)} live identifiers; the library cites {len(cited)}: "
              f"{', '.join(cited)}")
    found = problems(known)
    old = pinned() if PINNED.exists() else {}
    for scheme, names in known.items():
        if old.get(scheme, names) != names and not args.write:
            found.append(f"{PINNED.name} differs from the {scheme} release given (re-pin with --write)")
    for p in found:
        print(p, file=sys.stderr)
    if found:
        return 1
    if args.write:
        doc: dict[str, Any] = {
            "about": "Every live identifier of each pinned release with its name, extracted by "
                     "scripts/identifiers.py; tests/test_library.py checks the library against it.",
            "releases": {s: library.RELEASES[s] for s in READERS}, "sources": SOURCES,
            **{s: dict(sorted(known[s].items())) for s in READERS}}
        PINNED.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {PINNED}")
    print("every identifier checked is live and named as in its release")
    return 0


if __name__ == "__main__":
    sys.exit(main())
