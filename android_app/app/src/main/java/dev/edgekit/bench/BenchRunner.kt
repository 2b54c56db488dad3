package dev.edgekit.bench

import android.content.Context
import dev.edgekit.bench.core.BenchmarkLoop
import dev.edgekit.bench.core.Clock
import dev.edgekit.bench.core.Engine
import dev.edgekit.bench.core.ProgressListener
import dev.edgekit.bench.core.Protocol
import dev.edgekit.bench.core.RunConfig
import java.io.File

/** One run, shared by the instrumentation and the activity fallback. */
object BenchRunner {
    /** The app's external files folder for a run: the host pulls from here. */
    fun resultDir(context: Context, runId: String): File =
        File(context.getExternalFilesDir(null), "edgekit/$runId")

    /** Run the config in [runDir]; returns the written result.json. */
    fun run(context: Context, runDir: String, runId: String, progress: ProgressListener): File {
        val engineName = runCatching { RunConfig.parse(File(runDir, Protocol.CONFIG_FILE).readText()).engine }
            .getOrDefault("compiled_model")
        val engine: Engine = when (engineName) {
            "interpreter" -> InterpreterEngine()
            "onnxruntime" -> OrtEngine()
            "executorch" -> ExecuTorchEngine()
            else -> LiteRtEngine(context)
        }
        val out = resultDir(context, runId)
        out.mkdirs()
        BenchmarkLoop(engine, Clock.SYSTEM, AndroidMemoryProbe(), AndroidThermalProbe(context), progress)
            .run(File(runDir).toPath(), out.toPath(), DeviceFacts.of())
        return File(out, Protocol.RESULT_FILE)
    }
}
