package io.vimgfs.store;

import java.util.List;

/** The outcome of re-hashing every blob and checking every reference, and what a repair did. */
public record FsckReport(int blobsChecked, long bytesChecked, List<Problem> problems, List<String> repairs) {

    /** One thing wrong, by the digest (or stray file) it concerns. */
    public record Problem(String subject, String what) {
        @Override
        public String toString() {
            return subject + ": " + what;
        }
    }

    public FsckReport {
        problems = List.copyOf(problems);
        repairs = List.copyOf(repairs);
    }

    public boolean clean() {
        return problems.isEmpty();
    }
}
