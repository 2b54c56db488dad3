package dev.edgekit.bench.core;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** The model file on the device is the one the host pushed: size and sha256 from config.json. */
final class ModelCheck {
    private ModelCheck() {}

    static void verify(Path model, RunConfig config) throws EngineException {
        try {
            long size = Files.size(model);
            if (size != config.modelSize) {
                throw new EngineException("model_checksum",
                        model.getFileName() + " is " + size + " bytes, config.json says " + config.modelSize);
            }
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            try (InputStream in = Files.newInputStream(model)) {
                for (int n = in.read(buf); n > 0; n = in.read(buf)) {
                    sha.update(buf, 0, n);
                }
            }
            StringBuilder hex = new StringBuilder();
            for (byte b : sha.digest()) {
                hex.append(String.format("%02x", b & 0xff));
            }
            if (!hex.toString().equals(config.modelSha256)) {
                throw new EngineException("model_checksum",
                        model.getFileName() + " has sha256 " + hex + ", config.json says " + config.modelSha256);
            }
        } catch (IOException e) {
            throw new EngineException("model_load", "cannot read " + model.getFileName() + ": " + e.getMessage());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java platform", e);
        }
    }
}
