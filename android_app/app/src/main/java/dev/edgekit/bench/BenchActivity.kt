package dev.edgekit.bench

import android.app.Activity
import android.os.Bundle
import android.view.WindowManager
import android.widget.TextView
import dev.edgekit.bench.core.ProgressListener
import java.io.File

/**
 * Keeps the app in the foreground with the screen on during instrumentation. Started with
 * `--es run_dir DIR --es run_id ID` (the host's fallback when instrumentation is
 * unavailable) it runs the benchmark itself and finishes; the host polls for result.json.
 */
class BenchActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        val status = TextView(this).apply {
            text = "edgekit bench: running, keep the phone on"
            textSize = 20f
        }
        setContentView(status)
        val runDir = intent.getStringExtra("run_dir") ?: return
        val runId = intent.getStringExtra("run_id") ?: File(runDir).name
        Thread {
            try {
                BenchRunner.run(applicationContext, runDir, runId, ProgressListener.NONE)
            } finally {
                runOnUiThread { finish() }
            }
        }.start()
    }
}
