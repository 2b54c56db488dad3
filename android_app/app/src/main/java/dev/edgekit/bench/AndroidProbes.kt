package dev.edgekit.bench

import android.content.Context
import android.os.Build
import android.os.Debug
import android.os.PowerManager
import android.os.Process
import dev.edgekit.bench.core.MemoryProbe
import dev.edgekit.bench.core.MemorySnapshot
import dev.edgekit.bench.core.Placement
import dev.edgekit.bench.core.ProcStatus
import dev.edgekit.bench.core.ThermalProbe

/** VmRSS/VmHWM from /proc/self/status plus total PSS and graphics PSS from Debug.getMemoryInfo. */
class AndroidMemoryProbe : MemoryProbe {
    override fun snapshot(): MemorySnapshot {
        val proc = ProcStatus.self()
        val info = Debug.MemoryInfo()
        Debug.getMemoryInfo(info)
        val graphics = info.getMemoryStat("summary.graphics")?.toLongOrNull()
        return MemorySnapshot(proc.vmRssKb, proc.vmHwmKb, info.totalPss.toLong(), graphics)
    }
}

/** PowerManager's thermal status and 10-second headroom forecast. */
class AndroidThermalProbe(context: Context) : ThermalProbe {
    private val power = context.getSystemService(PowerManager::class.java)

    override fun status(): Int? = power?.currentThermalStatus

    override fun headroom(): Double? = power?.getThermalHeadroom(10)?.toDouble()
}

/** What the app reports about the device in every result. */
object DeviceFacts {
    fun of(): Map<String, Any> = mapOf(
        "model" to Build.MODEL,
        "manufacturer" to Build.MANUFACTURER,
        "soc" to Build.SOC_MODEL,
        "sdk" to Build.VERSION.SDK_INT.toString(),
        "fingerprint" to Build.FINGERPRINT,
    )
}

/**
 * LiteRT's own account of delegation: tflite/core/subgraph.cc logs "Replacing N out of M node(s)
 * with delegate (...)" at INFO under the tag tflite on Android (production builds included). An
 * app reads its own process's log without any permission. The Kotlin CompiledModel API has no
 * IsFullyAccelerated (it is C++ only in LiteRT 2.2/2.3), so this is the app's placement source.
 */
object DelegationLog {
    private const val MAX_LINES = 2000

    fun lines(): List<String> {
        val process = ProcessBuilder("logcat", "-d", "-v", "brief", "--pid=${Process.myPid()}", "-s", "tflite:I")
            .redirectErrorStream(true)
            .start()
        val lines = process.inputStream.bufferedReader().useLines { seq -> seq.take(MAX_LINES).toList() }
        process.destroy()
        return lines
    }

    /** The placement of the model built last in this process; null when no delegate took any op. */
    fun placement(): Placement? = Placement.fromTfliteLog(lines())
}
