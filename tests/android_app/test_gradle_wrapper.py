"""The app's Gradle wrapper runs: scripts and jar (written by a real Gradle, Debian's 4.4.1, with
`gradle wrapper --gradle-version 8.14`), checked offline against a distribution made here."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.conftest import require_system_tool

APP = Path(__file__).resolve().parents[2] / "android_app"

# stands in for Gradle's launcher: the wrapper loads org.gradle.launcher.GradleMain from the
# distribution's lib/gradle-launcher-*.jar and hands it the command line
_LAUNCHER = """
package org.gradle.launcher;
public class GradleMain {
    public static void main(String[] args) {
        System.out.println("launched by the wrapper: " + String.join(" ", args));
    }
}
"""


def test_wrapper_files_are_there_and_pin_the_readmes_gradle() -> None:
    assert os.access(APP / "gradlew", os.X_OK)
    assert (APP / "gradlew.bat").is_file()
    with zipfile.ZipFile(APP / "gradle" / "wrapper" / "gradle-wrapper.jar") as jar:
        assert "org/gradle/wrapper/GradleWrapperMain.class" in jar.namelist()
    props = (APP / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    assert "gradle-8.14-bin.zip" in props
    assert "8.14" in (APP / "README.md").read_text()
    assert subprocess.run(["sh", "-n", str(APP / "gradlew")], check=False).returncode == 0


def test_gradlew_downloads_unpacks_and_launches_a_distribution(tmp_path: Path) -> None:
    missing = [t for t in ("java", "javac", "jar") if shutil.which(t) is None]
    require_system_tool(f"{', '.join(missing)} not installed (a JDK)" if missing else None)
    src = tmp_path / "src" / "org" / "gradle" / "launcher"
    src.mkdir(parents=True)
    (src / "GradleMain.java").write_text(_LAUNCHER)
    classes = tmp_path / "classes"
    subprocess.run(["javac", "--release", "8", "-d", str(classes), str(src / "GradleMain.java")], check=True,
                   capture_output=True)  # fmt: skip
    lib = tmp_path / "dist" / "gradle-8.14" / "lib"
    lib.mkdir(parents=True)
    subprocess.run(["jar", "cf", str(lib / "gradle-launcher-8.14.jar"), "-C", str(classes), "."], check=True)
    dist = tmp_path / "gradle-8.14-bin.zip"
    with zipfile.ZipFile(dist, "w") as z:
        for f in (tmp_path / "dist").rglob("*"):
            z.write(f, f.relative_to(tmp_path / "dist"))
    project = tmp_path / "project"
    (project / "gradle" / "wrapper").mkdir(parents=True)
    shutil.copy2(APP / "gradlew", project / "gradlew")
    shutil.copy2(APP / "gradle" / "wrapper" / "gradle-wrapper.jar", project / "gradle" / "wrapper")
    props = (APP / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    local = props.replace("https\\://services.gradle.org/distributions/", f"file\\:{tmp_path}/")
    (project / "gradle" / "wrapper" / "gradle-wrapper.properties").write_text(local)
    env = {**os.environ, "GRADLE_USER_HOME": str(tmp_path / "home")}
    run = subprocess.run(["./gradlew", ":app:assembleRelease"], cwd=project, env=env, capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "launched by the wrapper: :app:assembleRelease" in run.stdout
    assert list((tmp_path / "home" / "wrapper" / "dists").glob("gradle-8.14-bin/*/gradle-8.14"))
