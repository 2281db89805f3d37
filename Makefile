# OphAI Clinic: `make run` runs the app, `make test` runs the test suite (`make test-reliability`
# the fault-injection suite).
# Both do all set-up first (venv, pinned requirements, system packages, database, translations).
PY := .venv/bin/python

.PHONY: run test setup python system migrate check lint format bench audit test-reliability

run: setup
	scripts/run.sh

test: python system
	$(PY) manage.py compilemessages --ignore=.venv -v 0
	$(PY) -m pytest --ignore=tests/reliability $(PYTEST_ARGS)

# Fault injection (worker SIGKILLs, Redis and PostgreSQL outages, a hanging LLM), hostile
# uploads through every entry point, check --deploy and a restore drill; ends with a summary
# table. Needs PostgreSQL and Redis (see .ci/run); `make test` leaves it to this target.
test-reliability: python system
	$(PY) manage.py compilemessages --ignore=.venv -v 0
	$(PY) -m pytest tests/reliability $(PYTEST_ARGS)

setup: python system
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py sync_roles
	$(PY) manage.py compilemessages --ignore=.venv -v 0
	$(PY) manage.py register_model --bundled --activate-if-none
	$(PY) manage.py bootstrap_users
	$(PY) manage.py seed_demo

python:
	scripts/setup_python.sh

system:
	scripts/install_system_packages.sh

# Static checks CI runs beside the tests.
check: python
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	# On SQLite: the check compares models with migration files and needs no server.
	DATABASE_URL= $(PY) manage.py makemigrations --check --dry-run

# Known vulnerabilities in the pinned requirements (needs PyPI's JSON API or OSV).
audit: python
	scripts/audit_dependencies.sh

format: python
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Retrain the bundled demonstration model into ai_engine/packages/ophai-demo-screening (needs
# ../shared/data; ~23 min on 2 busy CPU cores, deterministic for a given torch and thread count).
.PHONY: demo-model
demo-model: python
	$(PY) manage.py train_model --data ../shared/data/fundus/labels.csv --where dataset=odir \
		--task multiclass --labels normal,cataract,glaucoma \
		--arch resnet10t --arch-kwargs '{"channels":[32,64,128,256],"stem_width":16,"drop_rate":0.1}' \
		--input-size 192 --phase1-epochs 0 --lr2 0.002 --epochs 20 --patience 20 \
		--loss ce --label-smoothing 0.1 --ema 0.99 --val-fraction 0.15 --test-fraction 0.2 \
		--threads 2 --name ophai-demo-screening --out ai_engine/packages/ophai-demo-screening

# Retrain the default screening package into ai_engine/packages/ophai-screening on the CPU:
# ImageNet MobileNetV2 (../shared/data/pretrained) fine-tuned at 224 px with BatchNorm
# recalibration, augmentation as torch ops, EMA, and a wall-clock budget of 85 minutes (the
# schedule is fitted to it, so the epoch count depends on how busy the CPU is).
.PHONY: screening-model screening-compare gpu-recipe gpu-recipe-dr
screening-model: python
	$(PY) manage.py train_model --data ../shared/data/fundus/labels.csv --where dataset=odir \
		--task multiclass --labels normal,cataract,glaucoma --arch mobilenetv2_100 \
		--init ../shared/data/pretrained/mobilenetv2_100_imagenet.safetensors \
		--input-size 224 --phase1-epochs 0 --lr2 0.001 --epochs 60 --budget-minutes 85 --patience 60 \
		--loss ce --label-smoothing 0.1 --ema 0.99 --val-fraction 0.15 --test-fraction 0.2 \
		--name ophai-screening --model-version 1.0.0 \
		--intended-use "Research use — not for diagnosis. Demonstration model that sorts a fundus photo into normal / cataract / glaucoma for research on screening workflows; every result needs an ophthalmologist's review." \
		--threads 1 --out ai_engine/packages/ophai-screening

# ophai-dr and ophai-dme as bundled: CPU recipes (no GPU was available); `make gpu-recipe-dr` is the
# stronger GPU recipe. DR trains in two budgeted stages (70 + 45 min), then its screening operating
# point is chosen on validation (sensitivity >= 0.90).
DR_DATA = --data ../shared/data/fundus/labels.csv --data ../shared/data/dr_camera/labels.csv \
	--labels dr_grade_0,dr_grade_1,dr_grade_2,dr_grade_3,dr_grade_4
DIABETIC_COMMON = --val-fraction 0.15 --test-fraction 0.2 --arch mobilenetv2_100 --input-size 224 \
	--preprocessing fundus_crop,pad_square,resize,ben_graham,normalize --epochs 40 --phase1-epochs 0 \
	--lr2 1e-3 --ema 0.99 --patience 40 --threads 1 --cam-method gradcam --cam-layers blocks.6
PRETRAINED = ../shared/data/pretrained/mobilenetv2_100_imagenet.safetensors
.PHONY: dr-model dme-model
dr-model: python
	$(PY) manage.py train_model $(DR_DATA) $(DIABETIC_COMMON) --loss ce --label-smoothing 0.1 \
		--init $(PRETRAINED) --budget-minutes 70 --out var/runs/ophai-dr-stage1 --name ophai-dr \
		--model-version 1.0.0
	$(PY) manage.py train_model $(DR_DATA) $(DIABETIC_COMMON) --loss ce --label-smoothing 0.1 \
		--init var/runs/ophai-dr-stage1/model.safetensors --bn-init keep \
		--arch-kwargs '{"pad_type":"same"}' --mean 0.5,0.5,0.5 --std 0.50196,0.50196,0.50196 \
		--budget-minutes 45 --warmup-epochs 0.3 --out ai_engine/packages/ophai-dr --name ophai-dr \
		--model-version 1.0.0
	$(PY) manage.py set_operating_point ai_engine/packages/ophai-dr --sensitivity 0.9
dme-model: python
	$(PY) manage.py train_model --data ../shared/data/dme/labels.csv \
		--data ../shared/data/dr_camera/labels.csv --task binary --labels dme --positive 1,yes \
		--label-column dme,maculopathy $(DIABETIC_COMMON) --loss bce --init $(PRETRAINED) \
		--budget-minutes 45 --out ai_engine/packages/ophai-dme --name ophai-dme --model-version 1.0.0
	THREADS=1 scripts/dme_subset_check.sh ai_engine/packages/ophai-dme

# Retrain the quality model into ai_engine/packages/ophai-quality: EyeQ grades joined with
# fundus/labels.csv (into var/, never committed), MobileNetV2 at 224 px without photometric
# jitter, 11 epochs (what the 20-minute budget fitted on the busy CPU), then the reject threshold
# chosen on validation, the EyeQ test agreement and the refusals on unlabelled sources written
# into the card (ai_engine/inference/QUALITY_CALIBRATION.md).
.PHONY: quality-model
quality-model: python
	$(PY) scripts/eyeq_quality_labels.py --out var/quality/eyeq_labels.csv
	$(PY) manage.py train_model --data var/quality/eyeq_labels.csv --images ../shared/data/fundus \
		--label-column quality --labels good,usable,reject --val-fraction 0.2 --test-fraction 0.25 \
		--arch mobilenetv2_100 --init ../shared/data/pretrained/mobilenetv2_100_imagenet.safetensors \
		--input-size 224 --phase1-epochs 0 --lr2 0.001 --epochs 11 --patience 30 --loss ce \
		--label-smoothing 0.1 --photometric 0 --ema 0.99 --name ophai-quality --model-version 1.0.0 \
		--intended-use "Research use — not for diagnosis. Image-quality model (good / usable / reject) that refuses photos too poor to grade before any diagnosis model reads them; a refused photo is retaken or read by an ophthalmologist." \
		--threads 1 --out ai_engine/packages/ophai-quality
	$(PY) scripts/quality_agreement.py ai_engine/packages/ophai-quality --choose --min-recall 0.85 \
		--write-card --out var/quality/agreement.json
	$(PY) scripts/quality_refusals.py ai_engine/packages/ophai-quality --write-card

# Pretrained against random weights and 224 against 320 px, side by side at equal budgets.
screening-compare: python
	$(PY) bench/train_jobs.py bench/jobs/screening-cpu-compare.txt --out var/runs/compare --common \
		"--data ../shared/data/fundus/labels.csv --where dataset=odir --task multiclass \
		 --labels normal,cataract,glaucoma --val-fraction 0.15 --test-fraction 0.2 --phase1-epochs 0 \
		 --epochs 60 --patience 60 --budget-minutes $${MINUTES:-30} --loss ce --label-smoothing 0.1 \
		 --ema 0.99 --device cpu --threads 1"

# On a machine with a GPU: the candidates side by side on the GPU, one table, GPU pipeline figures.
gpu-recipe: python
	scripts/gpu_recipe.sh

# On a machine with a GPU: ophai-dr (256/384/512 px, pretrained or random init) and ophai-dme.
gpu-recipe-dr: python
	scripts/gpu_recipe_dr.sh
