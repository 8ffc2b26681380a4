"""The sample departments' directory files validate and match the demo data."""

from __future__ import annotations

import yaml

from catalog.directory.model import DirectoryFile, ShareType
from sharehub.demo import DIRECTORY_DIR

EXPECTED = {
    "SCJ-YYZZ-001": ("scj_db", ShareType.CONDITIONAL, "important"),
    "GAJ-HJRK-001": ("gaj_drop", ShareType.CONDITIONAL, "core"),
    "RSJ-SBJF-001": ("rsj_drop", ShareType.UNCONDITIONAL, "important"),
    "FY-SXBZXR-001": ("fy_drop", ShareType.UNCONDITIONAL, "general"),
    "SGB-BSZN-001": ("sgb_drop", ShareType.UNCONDITIONAL, "general"),
}


def load_all() -> dict[str, DirectoryFile]:
    return {
        p.name: DirectoryFile.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
        for p in sorted(DIRECTORY_DIR.glob("*.yaml"))
    }


def test_directory_dir_is_the_repo_folder():
    assert DIRECTORY_DIR.is_dir()
    assert (DIRECTORY_DIR.parent / "pyproject.toml").is_file()


def test_all_directory_files_validate():
    files = load_all()
    assert set(files) == {"scjgj.yaml", "gaj.yaml", "rsj.yaml", "fy.yaml", "sgb.yaml", "zgj.yaml"}
    datasets = {d.code: d for f in files.values() for d in f.datasets}
    assert set(datasets) == set(EXPECTED)
    for code, (ref, share, grade) in EXPECTED.items():
        d = datasets[code]
        assert d.source.connection == ref
        assert d.share.type is share
        assert d.grade.value == grade
        assert d.quality.policy.value == "quarantine"
        assert d.quality.max_bad_ratio == 0.05
        assert d.schedule
        assert d.summary and d.category


def test_certificate_types_and_mappings():
    files = load_all()
    types = {ct.name: ct for f in files.values() for ct in f.certificate_types}
    assert set(types) == {"营业执照", "居民身份证"}
    assert types["营业执照"].holder_kind.value == "enterprise"
    assert types["居民身份证"].holder_kind.value == "person"
    scj = files["scjgj.yaml"].datasets[0]
    assert scj.certificate is not None
    assert scj.certificate.type_code == types["营业执照"].code
    assert scj.certificate.revoked_values == ["吊销", "注销"]
    gaj = files["gaj.yaml"].datasets[0]
    assert gaj.certificate is not None and gaj.certificate.type_code == types["居民身份证"].code


def test_csv_fields_name_their_chinese_headers():
    from sharehub.demo.generate import GAJ_HEADERS

    gaj = load_all()["gaj.yaml"].datasets[0]
    assert {f.name: f.source_name for f in gaj.fields} == GAJ_HEADERS


def test_department_credit_codes_are_valid():
    from quality.checksums import is_credit_code

    for f in load_all().values():
        assert f.department.credit_code and is_credit_code(f.department.credit_code)
