// A policy value that names a file (certificate, key, CA, CRL, token file). The loader
// resolves every value parsed by a schema registered here against the directory of the
// policy file, so `certs/x.pem` means the same thing whatever the working directory is.
// Schema fragments owned by other modules use `FilePath` for their own file settings.
import { z } from 'zod';

export const filePathRegistry = z.registry<{ file: true }>();

/** A non-empty path; relative paths resolve against the policy file's directory. */
export const FilePath = z.string().min(1, 'must be a file path');
filePathRegistry.add(FilePath, { file: true });
