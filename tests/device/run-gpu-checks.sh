#!/usr/bin/env bash
# Runs every check that needs a GPU, on a machine with one: the native tests (ctest, labels cpu and
# cuda) built for that GPU, compute-sanitizer over the CUDA tests, the JUnit suite including the
# tests tagged gpu, and the GPU benchmark. Results go to $OUT (or ./target/gpu-checks).
# The GPU host's CPU (AVX-512 bf16/VNNI, often AMX) is also the only AVX-512 test a developer
# gets: ctest and JUnit run whole under every CPU kernel variant it has (auto, which is AVX-512
# there, then avx2 and scalar forced), and variants.txt says which ran and how each ended.
#
# Inputs, built on the development machine and copied next to the sources:
#   target/hybrimoe.jar          (mvn -B package; it also carries libdnnl.so.3)
#   target/test-classes          (JUnit classes)
#   .device/jre.tar.xz           a JRE (jlink) when the GPU machine has no java
#   .device/junit-platform-console-standalone-*.jar
# BENCH_CPU=1 also runs bench-cpu on the machine's host CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-target/gpu-checks}"
jar="${HMOE_JAR:-target/hybrimoe.jar}"  # .device/hybrimoe.jar: a slimmed copy, when size limits bite
mkdir -p "$out"
java=java
if ! command -v java >/dev/null 2>&1; then
  python3 -c "import tarfile; tarfile.open('.device/jre.tar.xz').extractall('/tmp')" && java=/tmp/jre/bin/java
fi

echo "== native build for this GPU + ctest"
rm -rf /tmp/hmoe-jar && mkdir -p /tmp/hmoe-jar && (cd /tmp/hmoe-jar && python3 -m zipfile -e "$OLDPWD/$jar" . >/dev/null)
arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)"
cmake -S . -B /tmp/hmoe-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" \
  -DDNNL_ROOT=/tmp/hmoe-jar/org/bytedeco/dnnl/linux-x86_64 >/dev/null && cmake --build /tmp/hmoe-build -j"$(nproc)" 2>&1 | grep -E 'error|warning' 
echo "CPU flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_vnni|amx_bf16|amx_int8)$' | tr '\n' ' ')" \
  | tee "$out/variants.txt"
for variant in auto avx2 scalar; do
  (cd /tmp/hmoe-build && HMOE_KERNEL="$variant" ctest --output-on-failure -V > "$out/ctest-$variant.txt" 2>&1)
  echo "ctest HMOE_KERNEL=$variant: $(grep -E 'tests passed' "$out/ctest-$variant.txt")" | tee -a "$out/variants.txt"
  grep -E 'Failed|\*\*\*' "$out/ctest-$variant.txt" | head -20
done
cp "$out/ctest-auto.txt" "$out/ctest.txt"

echo "== compute-sanitizer (API errors from the deliberate out-of-memory case are expected, not counted)"
for t in /tmp/hmoe-build/test-cuda-*; do
  for tool in memcheck racecheck synccheck; do
    printf '%s %s: ' "$(basename "$t")" "$tool"
    compute-sanitizer --tool "$tool" --report-api-errors no "$t" 2>&1 | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|SYNCCHECK|hazard' | tail -1
  done
done | tee "$out/sanitizer.txt"

echo "== JUnit (gpu-tagged tests run here), under every CPU variant"
for variant in auto avx2 scalar; do
  "$java" -Dhybrimoe.kernel="$variant" -jar .device/junit-platform-console-standalone-*.jar execute --disable-banner \
    --details=summary -cp "$jar":target/test-classes --scan-classpath target/test-classes > "$out/junit-$variant.txt" 2>&1
  echo "JUnit hybrimoe.kernel=$variant: $(grep -E 'tests (successful|failed|skipped)' "$out/junit-$variant.txt" | tr -s ' ' | tr '\n' ' ')" \
    | tee -a "$out/variants.txt"
done
cp "$out/junit-auto.txt" "$out/junit.txt"
tail -25 "$out/junit.txt"

echo "== info and bench-gpu"
"$java" -jar "$jar" info | tee "$out/info.txt"
"$java" -jar "$jar" bench-gpu --json "$out/bench-gpu.json" 2>&1 | tee "$out/bench-gpu.txt"
echo "== bench-layer (hybrid executor on the GPU, measured next to predicted)"
"$java" -jar "$jar" bench-layer --json "$out/bench-layer.json" --timeline "$out/bench-layer.svg" 2>&1 | tee "$out/bench-layer.txt"
echo "== bench-dense (a model shape's dense linears on the GPU against the host CPU)"
"$java" -jar "$jar" bench-dense --json "$out/bench-dense.json" 2>&1 | tee "$out/bench-dense.txt"
echo "== demo (a machine-sized random model under each bundle on the GPU)"
"$java" -jar "$jar" demo --device cuda --json "$out/demo.json" --timeline "$out/demo-timeline.svg" 2>&1 | tee "$out/demo.txt"

if [[ "${BENCH_CPU:-0}" == 1 ]]; then
  echo "== bench-cpu (the GPU machine's host CPU)"
  "$java" -jar "$jar" bench-cpu --json "$out/bench-cpu.json" 2>&1 | tee "$out/bench-cpu.txt"
fi
