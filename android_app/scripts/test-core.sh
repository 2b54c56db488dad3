#!/usr/bin/env bash
# Compile the app's pure-Java core and run its JUnit tests with plain javac/java (no Android
# SDK, no Gradle). Needs Debian's junit4 and libandroid-json-java (AOSP's org.json).
# Usage: android_app/scripts/test-core.sh [OUT_DIR]   (default: build/android-core)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$here/../build/android-core}" && cd "${1:-$here/../build/android-core}" && pwd)"
json=/usr/share/java/com.android.json.jar
libs="/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar:$json"
for jar in /usr/share/java/junit4.jar /usr/share/java/hamcrest-core.jar "$json"; do
  [ -f "$jar" ] || { echo "missing $jar: apt-get install junit4 libandroid-json-java" >&2; exit 2; }
done
rm -rf "$out/classes" "$out/test-classes" "$out/results"
mkdir -p "$out/classes" "$out/test-classes" "$out/results"
javac -Xlint:all -Werror --release 11 -d "$out/classes" -cp "$json" $(find "$here/core/src/main/java" -name '*.java')
javac --release 11 -d "$out/test-classes" -cp "$out/classes:$libs" $(find "$here/core/src/test/java" -name '*.java')
tests=$(cd "$here/core/src/test/java" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort)
cd "$here"
java -Dedgekit.vectors="$here/protocol/vectors" -Dedgekit.results.out="$out/results" \
  -cp "$out/classes:$out/test-classes:$libs" org.junit.runner.JUnitCore $tests
