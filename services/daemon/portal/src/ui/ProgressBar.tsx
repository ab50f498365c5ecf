// Progress with words: the bar for the eye, the label and value for everyone.
export function ProgressBar({ value, max, label, detail }: { value?: number; max?: number; label: string; detail?: string }) {
  const known = value !== undefined && max !== undefined && max > 0;
  return (
    <div class="progress">
      <div class="progress-label">
        <span>{label}</span>
        {detail && <span class="muted">{detail}</span>}
      </div>
      {/* Without a value a <progress> is indeterminate: the work is running, its size unknown. */}
      <progress max={known ? max : undefined} value={known ? Math.min(value!, max!) : undefined} aria-label={label} />
    </div>
  );
}
