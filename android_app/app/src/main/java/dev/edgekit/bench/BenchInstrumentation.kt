package dev.edgekit.bench

import android.app.Activity
import android.app.Instrumentation
import android.content.Intent
import android.os.Bundle
import java.io.File

/**
 * `am instrument -w -r -e run_dir DIR -e run_id ID dev.edgekit.bench/.BenchInstrumentation`.
 * Reports each stage as INSTRUMENTATION_STATUS and the result path as INSTRUMENTATION_RESULT.
 * `am instrument` starts a fresh app process per run, which keeps memory figures clean.
 */
class BenchInstrumentation : Instrumentation() {
    private var runDir: String? = null
    private var runId: String? = null

    override fun onCreate(arguments: Bundle?) {
        super.onCreate(arguments)
        runDir = arguments?.getString("run_dir")
        runId = arguments?.getString("run_id") ?: runDir?.let { File(it).name }
        start()
    }

    override fun onStart() {
        super.onStart()
        val results = Bundle()
        val dir = runDir
        val id = runId
        if (dir == null || id == null) {
            results.putString("error", "pass -e run_dir <folder> -e run_id <id>")
            finish(Activity.RESULT_CANCELED, results)
            return
        }
        // The activity keeps the app in the foreground with the screen on while it runs.
        val activity = startActivitySync(
            Intent(targetContext, BenchActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK),
        )
        val result = try {
            BenchRunner.run(targetContext, dir, id) { stage ->
                sendStatus(1, Bundle().apply {
                    putString("run_id", id)
                    putString("stage", stage)
                })
            }
        } finally {
            runOnMainSync { activity.finish() } // an Activity is finished on its UI thread
        }
        results.putString("result_path", result.absolutePath)
        finish(Activity.RESULT_OK, results)
    }
}
