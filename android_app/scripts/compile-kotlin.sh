#!/usr/bin/env bash
# Compile the app's Kotlin (no Android SDK here) against hand-written stubs of the Android,
# TensorFlow Lite and LiteRT APIs it calls (android_app/stubs/, written from the public
# references) and the Java core: catches typos and API misuse in `make test`. The Kotlin
# compiler is the one bundled in the kotlin-jupyter-kernel wheel (PyPI), fetched by name.
# Usage: compile-kotlin.sh BUILD_DIR PYTHON
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
python="$2"
wheel_dir="$out/kotlin-wheel"
jars="$wheel_dir/run_kotlin_kernel/jars"
if [ ! -f "$jars/.unpacked" ]; then
  rm -rf "$wheel_dir" && mkdir -p "$wheel_dir"
  "$python" -m pip download --quiet --no-deps --dest "$wheel_dir" "kotlin-jupyter-kernel==0.19.0.944"
  (cd "$wheel_dir" && "$python" -m zipfile -e kotlin_jupyter_kernel-*.whl . >/dev/null)
  touch "$jars/.unpacked"
fi
stdlib="$(ls "$jars"/kotlin-stdlib-*.jar)"
compiler_cp="$(ls "$jars"/kotlin-jupyter-kernel-*-all.jar):$stdlib:$(ls "$jars"/kotlin-reflect-*.jar):$(ls "$jars"/kotlin-script-runtime-*.jar):$(ls "$jars"/annotations-*.jar)"
kotlinc() { java -cp "$compiler_cp" org.jetbrains.kotlin.cli.jvm.K2JVMCompiler -no-stdlib -no-reflect -jvm-target 11 "$@"; }

json_jar=/usr/share/java/com.android.json.jar
[ -f "$json_jar" ] || { echo "missing $json_jar: apt-get install libandroid-json-java" >&2; exit 2; }
rm -rf "$out/stubs-java" "$out/stubs-kotlin" "$out/core" "$out/app"
mkdir -p "$out/stubs-java" "$out/stubs-kotlin" "$out/core" "$out/app"
javac -nowarn --release 11 -d "$out/stubs-java" $(find "$here/stubs/java" -name '*.java')
kotlinc -classpath "$stdlib:$out/stubs-java" -d "$out/stubs-kotlin" $(find "$here/stubs/kotlin" -name '*.kt')
javac -nowarn --release 11 -cp "$json_jar" -d "$out/core" $(find "$here/core/src/main/java" -name '*.java')
kotlinc -Werror -classpath "$stdlib:$out/stubs-java:$out/stubs-kotlin:$out/core:$json_jar" -d "$out/app" \
  $(find "$here/app/src/main/java" -name '*.kt')
echo "compiled $(find "$out/app" -name '*.class' | wc -l) classes of the app's Kotlin against the stubs"
