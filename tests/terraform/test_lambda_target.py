"""tools/lambda_target.py on hand-made zips and locks: what a package for a
Lambda runtime must and must not contain. No network, no terraform."""

from __future__ import annotations

import zipfile

import pytest

from tools.lambda_target import RUST_BINDING, Target, TargetError, read_lock, verify_package

ELF_X86_64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + (62).to_bytes(2, "little") + b"\x00" * 44
ELF_AARCH64 = ELF_X86_64[:18] + (183).to_bytes(2, "little") + ELF_X86_64[20:]


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def wheel(project, version, tag, files, pure=False):
    """A dist-info (WHEEL + RECORD) owning ``files``."""
    dist = f"{project}-{version}.dist-info"
    record = "".join(f"{name},,\n" for name in files)
    return {
        **files,
        f"{dist}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: {str(pure).lower()}\nTag: {tag}\n",
        f"{dist}/RECORD": record,
    }


def good_files(**overrides):
    files = {
        "app.py": "", "chalicelib/__init__.py": "", "chalice/app.py": "",
        **wheel("cryptography", "50.0.2", "cp311-abi3-manylinux_2_34_x86_64", {RUST_BINDING: ELF_X86_64}),
        **wheel("cffi", "2.1.1", "cp313-cp313-manylinux_2_17_x86_64",
                {"_cffi_backend.cpython-313-x86_64-linux-gnu.so": ELF_X86_64}),
        **wheel("pyjwt", "2.15.1", "py3-none-any", {"jwt/__init__.py": ""}, pure=True),
    }
    files.update(overrides)
    return files


TARGET = Target("python3.13", "x86_64")


class TestVerifyPackage:
    def test_a_fitting_package_passes(self, tmp_path):
        """cp313 and abi3 manylinux wheels up to glibc 2.34 fit python3.13 on x86_64."""
        shipped = verify_package(make_zip(tmp_path / "p.zip", good_files()), TARGET,
                                 ["cryptography", "cffi", "PyJWT"])
        assert shipped["cffi"]["fits"] and shipped["pyjwt"]["pure"]

    def test_a_wheel_for_the_builders_python_is_refused(self, tmp_path):
        """A cp311 extension (what Chalice packages on Python 3.11) is named with the target."""
        files = good_files()
        del files["_cffi_backend.cpython-313-x86_64-linux-gnu.so"]
        files.update(wheel("cffi", "2.1.1", "cp311-cp311-manylinux_2_17_x86_64",
                           {"_cffi_backend.cpython-311-x86_64-linux-gnu.so": ELF_X86_64}))
        with pytest.raises(TargetError) as info:
            verify_package(make_zip(tmp_path / "p.zip", files), TARGET)
        assert "cffi 2.1.1: wheel tags cp311-cp311-manylinux_2_17_x86_64 do not fit python3.13 on x86_64" in str(info.value)
        assert "built for CPython 3.11" in str(info.value)

    def test_a_newer_glibc_or_another_architecture_is_refused(self, tmp_path):
        """manylinux_2_39 needs a newer glibc than Amazon Linux 2023's; an aarch64 object is not x86_64."""
        files = good_files(**wheel("cryptography", "50.0.2", "cp311-abi3-manylinux_2_39_x86_64",
                                   {RUST_BINDING: ELF_AARCH64}))
        with pytest.raises(TargetError) as info:
            verify_package(make_zip(tmp_path / "p.zip", files), TARGET)
        assert "manylinux_2_39_x86_64 do not fit" in str(info.value)
        assert f"{RUST_BINDING}: not an ELF object for x86_64" in str(info.value)

    def test_missing_rust_binding_and_locked_package_are_named(self, tmp_path):
        """Without cryptography's binding every token check would fail at run time."""
        files = good_files()
        del files[RUST_BINDING]
        with pytest.raises(TargetError) as info:
            verify_package(make_zip(tmp_path / "p.zip", files), TARGET, ["attrs"])
        assert f"{RUST_BINDING} is missing" in str(info.value)
        assert "locked package attrs is not in the zip" in str(info.value)

    def test_bytecode_tests_and_runtime_provided_code_are_refused(self, tmp_path):
        """__pycache__, tests, boto3 and the local stack never ship."""
        files = good_files(**{"chalicelib/__pycache__/x.cpython-311.pyc": "", "jwt/tests/test_x.py": "",
                              "boto3/__init__.py": "", "local_stack/gateway.py": ""})
        with pytest.raises(TargetError) as info:
            verify_package(make_zip(tmp_path / "p.zip", files), TARGET)
        message = str(info.value)
        for name in ("chalicelib/__pycache__/x.cpython-311.pyc", "jwt/tests/test_x.py",
                     "boto3/__init__.py", "local_stack/gateway.py"):
            assert name in message

    def test_an_extension_no_wheel_owns_is_refused(self, tmp_path):
        """A stray .so (copied in by hand, say) has no tags to check: refused."""
        files = good_files(**{"stray.cpython-313-x86_64-linux-gnu.so": ELF_X86_64})
        with pytest.raises(TargetError, match="stray.cpython-313-x86_64-linux-gnu.so: a compiled module that no installed wheel owns"):
            verify_package(make_zip(tmp_path / "p.zip", files), TARGET)


class TestTarget:
    def test_unsupported_runtimes_and_architectures_are_refused(self):
        """python3.11 (Amazon Linux 2, end of life) and python3.14 (not in the provider) are refused."""
        for runtime in ("python3.11", "python3.14"):
            with pytest.raises(TargetError, match="python3.12, python3.13"):
                Target(runtime)
        with pytest.raises(TargetError, match="arm64, x86_64"):
            Target("python3.13", "aarch64")

    def test_arm64_uses_aarch64_wheels_up_to_glibc_2_34(self):
        """arm64 functions take manylinux aarch64 wheels, newest glibc first."""
        platforms = Target("python3.12", "arm64").platforms()
        assert platforms[0] == "manylinux_2_34_aarch64" and "manylinux2014_aarch64" in platforms
        assert not [p for p in platforms if "x86_64" in p or "2_35" in p]

    def test_lock_markers_are_evaluated_for_the_target(self, tmp_path):
        """A universal lock's lines for other Pythons are left out; unpinned lines are refused."""
        lock = tmp_path / "requirements.txt"
        lock.write_text(
            "attrs==26.1.0 \\\n    --hash=sha256:aa\n"
            "old==1.0 ; python_version < '3.12' \\\n    --hash=sha256:bb\n"
            "new==2.0 ; python_version >= '3.13' --hash=sha256:cc  # via x\n")
        assert [r.line for r in read_lock(lock, Target("python3.13"))] == ["attrs==26.1.0", "new==2.0"]
        lock.write_text("attrs>=26\n")
        with pytest.raises(TargetError, match="pinned with == and hashed"):
            read_lock(lock, TARGET)
