// Choose an app folder (Umbrel's umbrel-app.yml + docker-compose.yml, or a CasaOS or plain compose
// folder) from this computer; the few files the import needs are read in the browser and shown.
import { useId, useState } from 'preact/hooks';
import { sentence } from '../../ui/Field.js';
import { folderFiles, readAppFolder, type AppFolder } from './app-folder.js';

export function FolderPicker({ onChange, error }: { onChange: (folder: AppFolder | undefined) => void; error?: string }) {
  const id = useId();
  const [folder, setFolder] = useState<AppFolder>();
  const [problem, setProblem] = useState<string>();
  const choose = async (list: FileList | null) => {
    setProblem(undefined);
    try {
      const read = await readAppFolder(folderFiles(list));
      setFolder(read);
      onChange(read);
    } catch (err) {
      setFolder(undefined);
      setProblem((err as Error).message);
      onChange(undefined);
    }
  };
  const shown = problem ?? error;
  const described = [`${id}-hint`, folder && `${id}-read`, shown && `${id}-error`].filter(Boolean).join(' ');
  return (
    <div class={shown ? 'field invalid' : 'field'}>
      <label for={id}>App folder</label>
      {/* webkitdirectory: the browser asks for a folder and gives every file in it. */}
      <input
        id={id}
        type="file"
        {...({ webkitdirectory: true } as {})}
        multiple
        aria-describedby={described}
        aria-invalid={shown ? true : undefined}
        onChange={(e) => void choose(e.currentTarget.files)}
      />
      <p class="hint" id={`${id}-hint`}>
        An Umbrel app's folder (umbrel-app.yml and docker-compose.yml), or a CasaOS or other folder with a docker-compose.yml and maybe a .env. Only those files are read.
      </p>
      {folder && (
        <p class="muted" id={`${id}-read`} role="status">
          Read from {folder.folder}: {folder.read.join(', ')}
          {'umbrel' in folder.source ? ' (an Umbrel app)' : ''}.
        </p>
      )}
      {shown && (
        <p class="field-error" id={`${id}-error`}>
          {sentence(shown)}
        </p>
      )}
    </div>
  );
}
