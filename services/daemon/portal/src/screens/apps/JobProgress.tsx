// A job's progress as a bar with words: the image download in bytes while it runs, then the steps;
// a failed job says why, in an alert.
import { formatBytes } from '../../format.js';
import { Alert } from '../../ui/Alert.js';
import { ProgressBar } from '../../ui/ProgressBar.js';
import { jobDetail, jobFraction, jobTitle, type JobRecord } from './model.js';

export function JobProgress({ job }: { job: JobRecord }) {
  const detail = jobDetail(job, formatBytes);
  if (job.status === 'failed') return <Alert error={`${jobTitle({ ...job, status: 'running' })} failed: ${job.error ?? 'no reason given'}`} />;
  const { value, max } = jobFraction(job);
  return (
    <div class="job" data-job={job.id} data-status={job.status}>
      <ProgressBar label={jobTitle(job)} value={value} max={max} detail={detail} />
    </div>
  );
}
